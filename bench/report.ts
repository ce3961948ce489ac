// `npm run bench`: runs every benchmark on the real control plane, each in its own process, and writes
// bench/RESULTS.md (machine, date, commit, every figure and ratio as the benchmarks printed them) and
// bench/latency.svg (the latency distributions they recorded).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../scripts/testbed/binaries.ts';
import { globalSetup, globalTeardown } from '../test/support/global-setup.ts';
import { latencyChart, type Series } from './chart.ts';
import type { Figure } from './samples.ts';

const BENCHMARKS = [
  { script: 'bench/sidecar.ts', title: 'Sidecar' },
  { script: 'bench/approver.ts', title: 'Approver' },
  { script: 'bench/fleet.ts', title: 'Fleet' },
  { script: 'bench/credential-plugin.ts', title: 'Credential plugin' },
];

const SERIES: Record<string, string> = {
  'sidecar-rotation-latency-ms': 'sidecar: rotation, trigger to published kubeconfig',
  'approver-decision-latency-ms': 'our approver, no SubjectAccessReview: CSR created to Approved',
  'approver-reviewed-decision-latency-ms': 'our approver, with SubjectAccessReview: CSR created to Approved',
  'reference-decision-latency-ms': 'kube-controller-manager csrapproving: CSR created to Approved',
  'fleet-renewal-latency-ms': 'fleet of 1,000: renewal seen by each sidecar',
  'credential-plugin-directory-ms': 'credential plugin: directory sink, process start to exit',
  'credential-plugin-secret-ms': 'credential plugin: Secret sink, process start to exit',
};

/** The figures the benchmarks recorded, one row each, with the ratio to the reference where there is one. */
function summaryTable(file: string): string[] {
  const figures = existsSync(file)
    ? readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Figure)
    : [];
  const number = (value: number) =>
    Math.abs(value) >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  // Two significant digits for small ratios, which two decimals would show as 0.00.
  const ratio = (value: number) => (value < 0.1 ? value.toPrecision(2) : value.toFixed(2));
  return [
    '| benchmark | measure | ours | reference | ours / reference |',
    '|---|---|---|---|---|',
    ...figures.map(
      (figure) =>
        `| ${figure.benchmark} | ${figure.measure} | ${number(figure.ours)} ${figure.unit} | ${figure.reference === undefined ? '' : `${number(figure.reference)} ${figure.unit}`} | ${figure.reference === undefined ? '' : ratio(figure.ours / figure.reference)} |`,
    ),
  ];
}

async function run(script: string, samples: string): Promise<string> {
  const child = spawn(process.execPath, [join(REPO_ROOT, script)], {
    env: { ...process.env, KCR_BENCH_SAMPLES_DIR: samples },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
    process.stdout.write(chunk);
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`${script} exited with ${String(code)}`);
  return output;
}

const samples = mkdtempSync(join(tmpdir(), 'kcr-bench-samples-'));
try {
  // Started once for every benchmark: each one's own setup then reuses them and its teardown leaves them up.
  await globalSetup();
  const sections: string[] = [];
  for (const benchmark of BENCHMARKS) {
    const output = await run(benchmark.script, samples);
    // Each benchmark prints its own "# ..." title line and "## ..." sections, kept as printed.
    sections.push(`### ${benchmark.title}\n\n\`\`\`\n${output.replace(/^# .*\n/m, '').trim()}\n\`\`\`\n`);
  }
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const series: Series[] = Object.entries(SERIES)
    .filter(([file]) => existsSync(join(samples, `${file}.json`)))
    .map(([file, name]) => ({
      name,
      values: JSON.parse(readFileSync(join(samples, `${file}.json`), 'utf8')) as number[],
    }));
  writeFileSync(
    join(REPO_ROOT, 'bench', 'latency.svg'),
    latencyChart('Latency distributions (share of samples at or below)', series),
  );
  const header = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (bench/report.ts); every figure below is what the benchmarks printed in that run.',
    'Ratios are ours / the reference measured in the same run on the same control plane.',
    '',
    '| | |',
    '|---|---|',
    `| date | ${new Date().toISOString()} |`,
    `| commit | ${commit} |`,
    `| machine | ${String(cpus().length)} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB |`,
    `| Node | ${process.version} |`,
    `| control plane | kube-apiserver and kube-controller-manager v1.36.3, etcd v3.6.8 (built from the Go module proxy) |`,
    '',
    '## Summary',
    '',
    ...summaryTable(join(samples, 'figures.jsonl')),
    '',
    '![latency distributions](latency.svg)',
    '',
    '## What each benchmark printed',
    '',
  ];
  writeFileSync(join(REPO_ROOT, 'bench', 'RESULTS.md'), [...header, ...sections].join('\n'));
  process.stdout.write('wrote bench/RESULTS.md and bench/latency.svg\n');
} finally {
  await globalTeardown();
  rmSync(samples, { recursive: true, force: true });
}
