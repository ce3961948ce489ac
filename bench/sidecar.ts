// Sidecar benchmarks on the real control plane (`npm run bench:sidecar`). Prints figures, never asserts on
// time:
//   1. key generation + CSR build per operation, ECDSA P-256 against RSA-2048 (the reference);
//   2. rotation latency from trigger to published kubeconfig over >= 50 rotations, split into
//      keygen+CSR build, API create, wait for issue, publish, with the admin approving in a tight loop;
//   3. an idle sidecar with 10 targets: RSS and CPU over 60 s, against an idle bare Node process.
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
import { quantile, recordFigure, recordSamples } from './samples.ts';

const ROTATIONS = Number(process.env.KCR_BENCH_ROTATIONS ?? 60);
const IDLE_SECONDS = Number(process.env.KCR_BENCH_IDLE_SECONDS ?? 60);

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

async function benchRotation(scratch: string): Promise<void> {
  out(`## rotation latency, trigger to published kubeconfig (${String(ROTATIONS)} rotations, ECDSA P-256)`);
  const target = testCluster('target');
  const prepared = await prepareTarget(target);
  const approver = new TestApprover(target.admin(), prepared.name, { pollMs: 5 });
  const sidecar = new SidecarProcess(
    writeSidecarConfig(prepared, { forceIntervalSeconds: 1, rereadIntervalSeconds: 3600 }),
    { logDir: scratch },
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
    recordSamples('sidecar-rotation-latency-ms', rows[0]?.[1] ?? []);
    recordFigure({
      benchmark: 'sidecar',
      measure: 'rotation, trigger to published kubeconfig, p50',
      ours: quantile(rows[0]?.[1] ?? [], 0.5),
      unit: 'ms',
    });
    recordFigure({
      benchmark: 'sidecar',
      measure: 'rotation, trigger to published kubeconfig, p99',
      ours: quantile(rows[0]?.[1] ?? [], 0.99),
      unit: 'ms',
    });
    for (const [name, values] of rows)
      out(
        `${name.padEnd(22)} p50 ${ms(quantile(values, 0.5)).padStart(9)}   p99 ${ms(quantile(values, 0.99)).padStart(9)}`,
      );
    out('(wait for issue includes the stand-in approver polling every 5 ms and kube-controller-manager signing)');
  } finally {
    await sidecar.stop();
    await approver.stop();
  }
  out();
}

function processUsage(pid: number): { rssKiB: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
  return { rssKiB, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

async function measureIdle(pid: number, seconds: number): Promise<{ rssMiB: number; cpuPercent: number }> {
  const ticksPerSecond = 100;
  const before = processUsage(pid);
  await sleep(seconds * 1000);
  const after = processUsage(pid);
  return {
    rssMiB: after.rssKiB / 1024,
    cpuPercent: ((after.cpuTicks - before.cpuTicks) / ticksPerSecond / seconds) * 100,
  };
}

async function benchIdle(scratch: string): Promise<void> {
  out(`## idle sidecar with 10 targets, over ${String(IDLE_SECONDS)} s`);
  const target = testCluster('target');
  const prepared = await Promise.all(Array.from({ length: 10 }, () => prepareTarget(target)));
  const approvers = prepared.map((one) => new TestApprover(target.admin(), one.name));
  const configPath = writeSidecarConfig(prepared, { expirationSeconds: 3600, rereadIntervalSeconds: 60 });
  const sidecar = new SidecarProcess(configPath, { logDir: scratch });
  const baseline = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  // What the Kubernetes client library alone costs, loaded and idle.
  const library = spawn(
    process.execPath,
    ['--input-type=module', '-e', "await import('@kubernetes/client-node'); setInterval(() => {}, 1 << 30)"],
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
    out(`sidecar (10 targets): RSS ${ours.rssMiB.toFixed(1)} MiB, CPU ${ours.cpuPercent.toFixed(3)}% of one core`);
    out(
      `bare Node process (reference): RSS ${bare.rssMiB.toFixed(1)} MiB, CPU ${bare.cpuPercent.toFixed(3)}% of one core`,
    );
    out(
      `Node with @kubernetes/client-node loaded (reference): RSS ${client.rssMiB.toFixed(1)} MiB, CPU ${client.cpuPercent.toFixed(3)}% of one core`,
    );
    out(
      `ratio RSS sidecar/bare: ${(ours.rssMiB / bare.rssMiB).toFixed(2)}, sidecar/client-library: ${(ours.rssMiB / client.rssMiB).toFixed(2)}`,
    );
    recordFigure({
      benchmark: 'sidecar',
      measure: 'idle RSS, 10 targets (vs Node with the client library loaded)',
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
  } finally {
    baseline.kill();
    library.kill();
    await sidecar.stop();
    await Promise.all(approvers.map((approver) => approver.stop()));
  }
  out();
}

/** The runtime dependencies the sidecar loads, each alone in an idle Node process: where the floor is. */
const RUNTIME_DEPENDENCIES = [
  '@kubernetes/client-node',
  'pino',
  'prom-client',
  'chokidar',
  'zod',
  'yaml',
  'node-forge',
  'undici',
];

async function rssOfIdleImport(specifier: string | undefined): Promise<number> {
  const code = `${specifier === undefined ? '' : `await import(${JSON.stringify(specifier)});`} setInterval(() => {}, 1 << 30)`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: 'ignore' });
  try {
    // Long enough for the import and its first garbage collections to settle.
    await sleep(3_000);
    return processUsage(child.pid ?? 0).rssKiB / 1024;
  } finally {
    child.kill();
  }
}

async function benchFloor(): Promise<void> {
  out('## floor analysis: idle RSS of Node with one runtime dependency imported');
  const bare = await rssOfIdleImport(undefined);
  out(`bare Node: ${bare.toFixed(1)} MiB`);
  for (const dependency of RUNTIME_DEPENDENCIES) {
    const rss = await rssOfIdleImport(dependency);
    out(`${dependency.padEnd(24)} ${rss.toFixed(1).padStart(6)} MiB (+${(rss - bare).toFixed(1)} over bare Node)`);
  }
  out();
}

async function main(): Promise<void> {
  const scratch = scratchDir('bench-sidecar');
  out(
    `# sidecar benchmarks (${new Date().toISOString()}, Node ${process.version}, ${String((await import('node:os')).cpus().length)} CPUs)`,
  );
  out();
  benchKeygen();
  try {
    await globalSetup();
    await benchRotation(scratch.path);
    await benchIdle(scratch.path);
    await benchFloor();
  } finally {
    await globalTeardown();
    scratch.dispose();
  }
}

await main();
