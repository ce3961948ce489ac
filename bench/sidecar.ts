// Sidecar benchmarks on the real control plane (`npm run bench:sidecar`). Prints figures, never asserts on
// time:
//   1. key generation + CSR build per operation, ECDSA P-256 against RSA-2048 (the reference);
//   2. rotation latency from trigger to published kubeconfig over >= 50 rotations, split into
//      keygen+CSR build, API create, wait for issue, publish, with the admin approving in a tight loop;
//   3. an idle sidecar with 10 targets: RSS and CPU over 60 s, against an idle bare Node process;
// 2 and 3 run the compiled dist/cli.js under the image's entrypoint flags (read from the Dockerfile), then
// again under each V8 flag set tried for the footprint, so that a flag is kept only if it pays;
//   4. the floor: idle RSS of bare Node, and of Node with each runtime dependency imported alone.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildCertificationRequest } from '../src/core/pki/csr.ts';
import { generateKeyPair, type KeyAlgorithm } from '../src/core/pki/keys.ts';
import { testCluster } from '../test/support/clusters.ts';
import { globalSetup, globalTeardown } from '../test/support/global-setup.ts';
import {
  prepareTarget,
  rotated,
  scratchDir,
  SidecarProcess,
  TestApprover,
  writeSidecarConfig,
} from '../test/support/sidecar.ts';
import { buildDist, imageFlags } from './dist.ts';
import { RUNTIME_IMPORTS } from './runtime-imports.ts';
import { quantile, recordFigure, recordSamples } from './samples.ts';

const ROTATIONS = Number(process.env.KCR_BENCH_ROTATIONS ?? 60);
const IDLE_SECONDS = Number(process.env.KCR_BENCH_IDLE_SECONDS ?? 60);

/** V8 settings for a small, mostly idle process, each measured on top of the image's flags. */
const FLAG_TRIALS: readonly (readonly string[])[] = [
  [],
  ['--max-semi-space-size=1'],
  ['--lite-mode'],
  ['--lite-mode', '--max-semi-space-size=1'],
];

interface Variant {
  readonly label: string;
  readonly nodeOptions: readonly string[];
  /** The figures recorded in RESULTS.md are the image's. */
  readonly recorded: boolean;
}

function variants(): Variant[] {
  const image = imageFlags();
  return FLAG_TRIALS.map((extra) => ({
    label: [...image, ...extra].join(' ') || '(no flags)',
    nodeOptions: [...image, ...extra],
    recorded: extra.length === 0,
  }));
}

const out = (line = '') => process.stdout.write(`${line}\n`);
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;

function keygenAndBuild(algorithm: KeyAlgorithm, iterations: number): number[] {
  const subject = { commonName: 'bench-agent', organizations: ['bench'] };
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const started = performance.now();
    buildCertificationRequest(subject, generateKeyPair(algorithm));
    times.push(performance.now() - started);
  }
  return times;
}

function benchKeygen(): void {
  out('## key generation + CSR build, per operation');
  const ecdsa = keygenAndBuild('ecdsa-p256', 500);
  const rsa = keygenAndBuild('rsa-2048', 30);
  out(`ECDSA P-256: p50 ${ms(quantile(ecdsa, 0.5))}, p99 ${ms(quantile(ecdsa, 0.99))} (${String(ecdsa.length)} ops)`);
  out(
    `RSA-2048 (reference): p50 ${ms(quantile(rsa, 0.5))}, p99 ${ms(quantile(rsa, 0.99))} (${String(rsa.length)} ops)`,
  );
  out(`ratio ECDSA/RSA at p50: ${(quantile(ecdsa, 0.5) / quantile(rsa, 0.5)).toFixed(4)}`);
  recordFigure({
    benchmark: 'sidecar',
    measure: 'key pair + CSR, p50 (ECDSA P-256 vs RSA-2048)',
    ours: quantile(ecdsa, 0.5),
    reference: quantile(rsa, 0.5),
    unit: 'ms',
  });
  out();
}

async function benchRotation(scratch: string, entry: string, variant: Variant): Promise<Latency> {
  out(
    `## rotation latency, trigger to published kubeconfig (${String(ROTATIONS)} rotations, ECDSA P-256; node ${variant.label})`,
  );
  const target = testCluster('target');
  const prepared = await prepareTarget(target);
  const approver = new TestApprover(target.admin(), prepared.name, { pollMs: 5 });
  const sidecar = new SidecarProcess(
    writeSidecarConfig(prepared, { forceIntervalSeconds: 1, rereadIntervalSeconds: 3600 }),
    { logDir: scratch, entry, nodeOptions: variant.nodeOptions },
  );
  try {
    // The first rotation (bootstrap) warms up connections; it is not counted.
    await sidecar.waitForLog(rotated);
    while (sidecar.count(rotated) < ROTATIONS + 1) await sleep(200);
    const samples = sidecar.lines.filter(rotated).slice(1, ROTATIONS + 1);
    const column = (pick: (line: (typeof samples)[number]) => number) => samples.map(pick);
    const timings = (step: string) => column((line) => Number((line.timings as Record<string, number>)[step]));
    const rows: [string, number[]][] = [
      ['total', column((line) => Number(line.durationMs))],
      ['keygen + CSR build', timings('keygen')],
      ['API create', timings('create')],
      ['wait for issue', timings('wait')],
      ['publish (directory)', timings('publish')],
    ];
    const total = rows[0]?.[1] ?? [];
    if (variant.recorded) {
      recordSamples('sidecar-rotation-latency-ms', total);
      recordFigure({
        benchmark: 'sidecar',
        measure: 'rotation, trigger to published kubeconfig, p50',
        ours: quantile(total, 0.5),
        unit: 'ms',
      });
      recordFigure({
        benchmark: 'sidecar',
        measure: 'rotation, trigger to published kubeconfig, p99',
        ours: quantile(total, 0.99),
        unit: 'ms',
      });
    }
    for (const [name, values] of rows)
      out(
        `${name.padEnd(22)} p50 ${ms(quantile(values, 0.5)).padStart(9)}   p99 ${ms(quantile(values, 0.99)).padStart(9)}`,
      );
    out('(wait for issue includes the stand-in approver polling every 5 ms and kube-controller-manager signing)');
    // CPU of the whole run (rotations every second): what a flag costs in work.
    const { cpuTicks } = processUsage(sidecar.child.pid ?? 0);
    return { p50: quantile(total, 0.5), p99: quantile(total, 0.99), cpuSeconds: cpuTicks / TICKS_PER_SECOND };
  } finally {
    await sidecar.stop();
    await approver.stop();
    out();
  }
}

interface Latency {
  readonly p50: number;
  readonly p99: number;
  readonly cpuSeconds: number;
}

const TICKS_PER_SECOND = 100;

function processUsage(pid: number): { rssKiB: number; peakKiB: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  // The high-water mark: the first rotations of every target, at start, are the peak.
  const peakKiB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
  return { rssKiB, peakKiB, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

interface Idle {
  readonly rssMiB: number;
  readonly peakMiB: number;
  readonly cpuPercent: number;
}

async function measureIdle(pid: number, seconds: number): Promise<Idle> {
  const before = processUsage(pid);
  await sleep(seconds * 1000);
  const after = processUsage(pid);
  return {
    rssMiB: after.rssKiB / 1024,
    peakMiB: after.peakKiB / 1024,
    cpuPercent: ((after.cpuTicks - before.cpuTicks) / TICKS_PER_SECOND / seconds) * 100,
  };
}

async function benchIdle(scratch: string, entry: string, variant: Variant): Promise<Idle> {
  out(`## idle sidecar with 10 targets, over ${String(IDLE_SECONDS)} s (node ${variant.label})`);
  const target = testCluster('target');
  const prepared = await Promise.all(Array.from({ length: 10 }, () => prepareTarget(target)));
  const approvers = prepared.map((one) => new TestApprover(target.admin(), one.name));
  const configPath = writeSidecarConfig(prepared, { expirationSeconds: 3600, rereadIntervalSeconds: 60 });
  const sidecar = new SidecarProcess(configPath, { logDir: scratch, entry, nodeOptions: variant.nodeOptions });
  const baseline = spawn(process.execPath, [...variant.nodeOptions, '-e', 'setInterval(() => {}, 1 << 30)'], {
    stdio: 'ignore',
  });
  // What the Kubernetes client library alone costs, loaded and idle (the approver's; the sidecar no longer loads it).
  const library = spawn(
    process.execPath,
    [
      ...variant.nodeOptions,
      '--input-type=module',
      '-e',
      "await import('@kubernetes/client-node'); setInterval(() => {}, 1 << 30)",
    ],
    { stdio: 'ignore' },
  );
  try {
    while (sidecar.count(rotated) < 10) await sleep(200);
    await sleep(2_000);
    const pid = sidecar.child.pid ?? 0;
    const [ours, bare, client] = await Promise.all([
      measureIdle(pid, IDLE_SECONDS),
      measureIdle(baseline.pid ?? 0, IDLE_SECONDS),
      measureIdle(library.pid ?? 0, IDLE_SECONDS),
    ]);
    out(
      `sidecar (10 targets): RSS ${ours.rssMiB.toFixed(1)} MiB (peak since start ${ours.peakMiB.toFixed(1)} MiB), CPU ${ours.cpuPercent.toFixed(3)}% of one core`,
    );
    out(
      `bare Node process (reference): RSS ${bare.rssMiB.toFixed(1)} MiB, CPU ${bare.cpuPercent.toFixed(3)}% of one core`,
    );
    out(
      `Node with @kubernetes/client-node loaded (reference): RSS ${client.rssMiB.toFixed(1)} MiB, CPU ${client.cpuPercent.toFixed(3)}% of one core`,
    );
    out(
      `ratio RSS sidecar/bare: ${(ours.rssMiB / bare.rssMiB).toFixed(2)}, sidecar/client-library: ${(ours.rssMiB / client.rssMiB).toFixed(2)}`,
    );
    if (variant.recorded) {
      recordFigure({
        benchmark: 'sidecar',
        measure: 'idle RSS, 10 targets, image flags (vs Node with the client library loaded)',
        ours: ours.rssMiB,
        reference: client.rssMiB,
        unit: 'MiB',
      });
      recordFigure({
        benchmark: 'sidecar',
        measure: 'idle CPU, 10 targets, share of one core',
        ours: ours.cpuPercent,
        unit: '%',
      });
    }
    return ours;
  } finally {
    baseline.kill();
    library.kill();
    await sidecar.stop();
    await Promise.all(approvers.map((approver) => approver.stop()));
    out();
  }
}

/**
 * Each runtime dependency alone in an idle Node process: where the floor is. client-node is loaded only by
 * `bootstrap` and the injector; it is here as what the sidecar no longer pays.
 */
const RUNTIME_DEPENDENCIES = ['@kubernetes/client-node', ...RUNTIME_IMPORTS];

async function rssOfIdleImport(specifiers: readonly string[], flags: readonly string[]): Promise<number> {
  const code = `${specifiers.map((specifier) => `await import(${JSON.stringify(specifier)});`).join(' ')} setInterval(() => {}, 1 << 30)`;
  const child = spawn(process.execPath, [...flags, '--input-type=module', '-e', code], { stdio: 'ignore' });
  try {
    // Long enough for the import and its first garbage collections to settle.
    await sleep(3_000);
    return processUsage(child.pid ?? 0).rssKiB / 1024;
  } finally {
    child.kill();
  }
}

async function benchFloor(sidecarRss: number): Promise<void> {
  const flags = imageFlags();
  out(`## floor analysis: idle RSS of Node with one runtime dependency imported (node ${flags.join(' ')})`);
  const bare = await rssOfIdleImport([], flags);
  out(`bare Node: ${bare.toFixed(1)} MiB`);
  for (const dependency of RUNTIME_DEPENDENCIES) {
    const rss = await rssOfIdleImport([dependency], flags);
    out(`${dependency.padEnd(24)} ${rss.toFixed(1).padStart(6)} MiB (+${(rss - bare).toFixed(1)} over bare Node)`);
  }
  const together = await rssOfIdleImport(RUNTIME_IMPORTS, flags);
  out(`the sidecar's dependencies together (${RUNTIME_IMPORTS.join(', ')}): ${together.toFixed(1)} MiB`);
  out(
    `the sidecar, idle with 10 targets: ${sidecarRss.toFixed(1)} MiB (+${(sidecarRss - together).toFixed(1)} over its dependencies: our code, 10 targets' state, connections)`,
  );
  out();
}

async function main(): Promise<void> {
  const scratch = scratchDir('bench-sidecar');
  const dist = await buildDist();
  out(
    `# sidecar benchmarks (${new Date().toISOString()}, Node ${process.version}, ${String((await import('node:os')).cpus().length)} CPUs)`,
  );
  out();
  benchKeygen();
  try {
    await globalSetup();
    const trials: { variant: Variant; latency: Latency; idle: Idle }[] = [];
    for (const variant of variants()) {
      const latency = await benchRotation(scratch.path, dist.entry, variant);
      const idle = await benchIdle(scratch.path, dist.entry, variant);
      trials.push({ variant, latency, idle });
    }
    out('## V8 flags tried (dist/cli.js sidecar)');
    out(
      '| node flags | idle RSS, 10 targets | peak RSS | idle CPU | rotation p50 | rotation p99 | CPU for the rotations |',
    );
    out('|---|---|---|---|---|---|---|');
    for (const { variant, latency, idle } of trials)
      out(
        `| ${variant.label} | ${idle.rssMiB.toFixed(1)} MiB | ${idle.peakMiB.toFixed(1)} MiB | ${idle.cpuPercent.toFixed(3)} % | ${ms(latency.p50)} | ${ms(latency.p99)} | ${latency.cpuSeconds.toFixed(1)} s |`,
      );
    out();
    await benchFloor(trials[0]?.idle.rssMiB ?? Number.NaN);
  } finally {
    await globalTeardown();
    dist.dispose();
    scratch.dispose();
  }
}

await main();
