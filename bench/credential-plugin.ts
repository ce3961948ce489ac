// The exec credential plugin (`kubeconfig-rotator credential`), which client-go runs on every credential refresh
// of every consumer: wall time from process start to exit, and peak RSS, of the compiled dist/cli.js under the
// image's flags, against references measured in the same run, interleaved run by run:
//   - a directory sink, against `node -e 0` (Node's own start: the floor of any Node plugin);
//   - a Secret sink in the source cluster (the ClusterProfile path), against the upstream kubeconfig-secretreader
//     plugin (Go, sigs.k8s.io/cluster-inventory-api v0.1.0) reading the same Secret.
// Prints figures, never asserts on time (`node bench/credential-plugin.ts`; `npm run bench` runs it too).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CoreV1Api } from '@kubernetes/client-node';
import { ensureConsumerProbes } from '../scripts/testbed/binaries.ts';
import { renderSecret } from '../src/core/secret-format/formats.ts';
import { DirectorySink } from '../src/sidecar/sinks/directory.ts';
import { testCluster } from '../test/support/clusters.ts';
import { credentialBundle } from '../test/support/credential-bundle.ts';
import { globalSetup, globalTeardown } from '../test/support/global-setup.ts';
import { uniqueName } from '../test/support/kube.ts';
import { opensslCa } from '../test/support/openssl-ca.ts';
import { buildDist, imageFlags } from './dist.ts';
import { quantile, recordFigure, recordSamples } from './samples.ts';

const RUNS = Number(process.env.KCR_BENCH_PLUGIN_RUNS ?? 60);
// GNU time reports a finished child's peak RSS (Node cannot: a child's rusage is not exposed).
const GNU_TIME = '/usr/bin/time';

const out = (line = '') => process.stdout.write(`${line}\n`);

interface Command {
  readonly label: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Whether stdout must hold an ExecCredential (the references' own output is checked too). */
  readonly credential: boolean;
}

/** Runs it once: milliseconds from spawn to exit; throws unless it exits 0 with what it should print. */
async function timed(command: Command): Promise<number> {
  const started = performance.now();
  const child = spawn(command.file, command.args, {
    env: { ...process.env, ...command.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const elapsed = performance.now() - started;
  if (code !== 0) throw new Error(`${command.label} exited ${String(code)}: ${stderr}`);
  if (command.credential) {
    const status = (JSON.parse(stdout) as { status?: Record<string, unknown> }).status;
    if (status === undefined || (status.token === undefined && status.clientCertificateData === undefined))
      throw new Error(`${command.label} printed no credential`);
  }
  return elapsed;
}

/** Peak RSS (MiB) of one run, measured by GNU time; undefined when it is not installed. */
async function peakRss(command: Command, scratch: string): Promise<number | undefined> {
  if (!existsSync(GNU_TIME)) return undefined;
  const report = join(scratch, 'time.out');
  await timed({ ...command, file: GNU_TIME, args: ['-f', '%M', '-o', report, command.file, ...command.args] });
  return Number(readFileSync(report, 'utf8').trim().split('\n').pop()) / 1024;
}

async function compare(ours: Command, reference: Command, scratch: string, figure: string): Promise<void> {
  out(`## ${ours.label} vs ${reference.label} (${String(RUNS)} runs each, interleaved)`);
  // One warm-up run each (page cache, the apiserver's first TLS session), not counted.
  await timed(ours);
  await timed(reference);
  const times = { ours: [] as number[], reference: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    times.ours.push(await timed(ours));
    times.reference.push(await timed(reference));
  }
  const rss = { ours: await peakRss(ours, scratch), reference: await peakRss(reference, scratch) };
  const line = (label: string, values: number[], peak: number | undefined) =>
    `${label}: wall p50 ${quantile(values, 0.5).toFixed(1)} ms, p90 ${quantile(values, 0.9).toFixed(1)} ms, peak RSS ${peak === undefined ? 'not measured (no GNU time)' : `${peak.toFixed(1)} MiB`}`;
  out(line(ours.label, times.ours, rss.ours));
  out(line(`${reference.label} (reference)`, times.reference, rss.reference));
  out(
    `ours - reference at p50: ${(quantile(times.ours, 0.5) - quantile(times.reference, 0.5)).toFixed(1)} ms; ratio ${(quantile(times.ours, 0.5) / quantile(times.reference, 0.5)).toFixed(2)}`,
  );
  recordSamples(`${figure}-ms`, times.ours);
  recordFigure({
    benchmark: 'credential plugin',
    measure: `${ours.label}: wall time from process start, p50 (vs ${reference.label})`,
    ours: quantile(times.ours, 0.5),
    reference: quantile(times.reference, 0.5),
    unit: 'ms',
  });
  if (rss.ours !== undefined && rss.reference !== undefined)
    recordFigure({
      benchmark: 'credential plugin',
      measure: `${ours.label}: peak RSS (vs ${reference.label})`,
      ours: rss.ours,
      reference: rss.reference,
      unit: 'MiB',
    });
  out();
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'kcr-bench-plugin-'));
  const ca = opensslCa('bench-plugin-ca');
  const dist = await buildDist();
  const flags = imageFlags();
  out(`# credential plugin benchmarks (${new Date().toISOString()}, Node ${process.version}, node ${flags.join(' ')})`);
  out();
  try {
    const now = Date.now();
    const bundle = credentialBundle(ca, { notBefore: now - 60_000, notAfter: now + 3_600_000 });
    const directory = join(scratch, 'out');
    await new DirectorySink({ path: directory, embed: false }).write(bundle);
    const node = (label: string, args: readonly string[], credential = true): Command => ({
      label,
      file: process.execPath,
      args: [...flags, ...args],
      credential,
    });
    await compare(
      node('credential --directory', [dist.entry, 'credential', '--directory', directory]),
      node('node -e 0', ['-e', '0'], false),
      scratch,
      'credential-plugin-directory',
    );

    await globalSetup();
    const source = testCluster('source');
    const bin = await ensureConsumerProbes();
    const name = uniqueName('bench-plugin');
    const content = renderSecret(bundle, { format: 'kubeconfig', targetName: bundle.name });
    await source
      .admin()
      .makeApiClient(CoreV1Api)
      .createNamespacedSecret({
        namespace: 'default',
        body: {
          metadata: { name, labels: content.labels, annotations: content.annotations },
          type: content.type,
          stringData: content.data,
        },
      });
    const execInfo = JSON.stringify({
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      spec: {
        interactive: false,
        cluster: { server: bundle.server, config: { name, key: 'config', namespace: 'default' } },
      },
    });
    await compare(
      node('credential --secret-namespace --secret-name', [
        dist.entry,
        'credential',
        '--secret-namespace',
        'default',
        '--secret-name',
        name,
        '--kubeconfig',
        source.state.kubeconfig,
      ]),
      {
        label: 'kubeconfig-secretreader (Go)',
        file: join(bin, 'kubeconfig-secretreader-plugin'),
        args: [],
        env: { KUBERNETES_EXEC_INFO: execInfo, KUBECONFIG: source.state.kubeconfig },
        credential: true,
      },
      scratch,
      'credential-plugin-secret',
    );
  } finally {
    await globalTeardown();
    dist.dispose();
    ca.dispose();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await main();
