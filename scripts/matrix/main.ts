// npm run test:matrix -- RUN...: the integration suite against other Kubernetes releases, one run after another.
// A RUN is a minor ("1.34": source and target of that release) or source:target ("1.34:1.37"). Each run builds
// its releases (scripts/build-controlplane.sh with KCR_KUBE_VERSION, cached per version), keeps its clusters in
// a directory of its own (KCR_CLUSTERS_DIR) so it never meets the default clusters, shortens the consumers
// test to KCR_CONSUMERS_TEST_SECONDS (300 unless set), and records every test's result; then the table in
// docs/support-matrix.md is rewritten from the latest recorded run of each RUN ever made on this machine.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cacheRoot, ensureControlPlane, REPO_ROOT } from '../testbed/binaries.ts';
import { runMain } from '../testbed/main.ts';
import { matrixMarkdown, type MatrixRun, type TestResult } from './features.ts';

const USAGE = `usage: npm run test:matrix -- RUN...
  RUN  a Kubernetes minor with a pinned module (1.34: source and target of that release),
       or SOURCE:TARGET (1.34:1.37: a source of one release, a target of another)
usage: npm run test:matrix -- --report
       rewrite docs/support-matrix.md's table from the runs recorded on this machine (a run made from
       another checkout, or one cut short)
`;
const RUN = /^(1\.\d+)(?::(1\.\d+))?$/;
const DOC = join(REPO_ROOT, 'docs', 'support-matrix.md');
const BEGIN = '<!-- test:matrix results: begin (written by npm run test:matrix) -->';
const END = '<!-- test:matrix results: end -->';
const DEFAULT_CONSUMERS_SECONDS = '300';

const progress = (line: string) => process.stderr.write(`[test:matrix] ${line}\n`);

/** The release a control-plane bin directory holds (bin-v1.34.4-etcd-...). */
function releaseOf(binDir: string): string {
  const release = /^bin-(v[0-9.]+)-/.exec(basename(binDir))?.[1];
  if (release === undefined) throw new Error(`cannot read the Kubernetes release from ${binDir}`);
  return release;
}

/** Builds a release (a no-op when cached), passing on and keeping the build's "built ..." lines. */
async function build(version: string, builds: string[]): Promise<string> {
  const binDir = await ensureControlPlane((line) => {
    progress(line);
    const built = /\] (built .*)$/.exec(line)?.[1];
    if (built !== undefined) builds.push(`${version}: ${built}`);
  }, version);
  return releaseOf(binDir);
}

function npmTestIntegration(env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn('npm', ['run', 'test:integration'], { cwd: REPO_ROOT, env, stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      resolve(code ?? 1);
    });
  });
}

async function runOne(label: string, sourceVersion: string, targetVersion: string, dir: string): Promise<number> {
  const builds: string[] = [];
  const source = await build(sourceVersion, builds);
  const target = targetVersion === sourceVersion ? source : await build(targetVersion, builds);
  const resultsFile = join(dir, 'results.jsonl');
  rmSync(resultsFile, { force: true });
  const consumersSeconds = process.env.KCR_CONSUMERS_TEST_SECONDS ?? DEFAULT_CONSUMERS_SECONDS;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KCR_KUBE_VERSION: targetVersion,
    KCR_CLUSTERS_DIR: join(dir, 'clusters'),
    KCR_CONSUMERS_TEST_SECONDS: consumersSeconds,
    KCR_TEST_RESULTS: resultsFile,
  };
  if (sourceVersion === targetVersion) delete env.KCR_SOURCE_KUBE_VERSION;
  else env.KCR_SOURCE_KUBE_VERSION = sourceVersion;
  progress(`${label}: source ${source}, target ${target}, consumers test ${consumersSeconds} s`);
  const started = Date.now();
  const record = (exitCode: number | null) => {
    const run: Omit<MatrixRun, 'results'> = {
      label,
      source,
      target,
      date: new Date(started).toISOString(),
      durationSeconds: Math.round((Date.now() - started) / 1000),
      exitCode,
      consumersSeconds: Number(consumersSeconds),
      builds,
    };
    writeFileSync(join(dir, 'run.json'), `${JSON.stringify(run, null, 2)}\n`);
  };
  // Recorded before it ends too, so a run cut short is reported as such, with the results it had.
  record(null);
  const exitCode = await npmTestIntegration(env);
  record(exitCode);
  progress(`${label}: exit code ${String(exitCode)} after ${String(Math.round((Date.now() - started) / 1000))} s`);
  return exitCode;
}

function readRun(dir: string): MatrixRun | undefined {
  const runFile = join(dir, 'run.json');
  const resultsFile = join(dir, 'results.jsonl');
  if (!existsSync(runFile)) return undefined;
  const results = existsSync(resultsFile)
    ? readFileSync(resultsFile, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as TestResult)
    : [];
  return { ...(JSON.parse(readFileSync(runFile, 'utf8')) as Omit<MatrixRun, 'results'>), results };
}

/** Same-release runs by release, then mixed ones. */
const runOrder = (a: MatrixRun, b: MatrixRun) =>
  Number(a.label.includes(':')) - Number(b.label.includes(':')) ||
  a.label.localeCompare(b.label, 'en', { numeric: true });

function writeDoc(root: string): void {
  const runs = readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => readRun(join(root, entry.name)))
    .filter((run) => run !== undefined)
    .sort(runOrder);
  const doc = readFileSync(DOC, 'utf8');
  const [before, rest] = doc.split(BEGIN);
  const after = rest?.split(END)[1];
  if (before === undefined || after === undefined) throw new Error(`${DOC} has no "${BEGIN}" ... "${END}" block`);
  writeFileSync(DOC, `${before}${BEGIN}\n${matrixMarkdown(runs)}${END}${after}`);
  progress(`wrote ${DOC} from ${String(runs.length)} runs`);
}

async function main(argv: readonly string[]): Promise<number> {
  const root = join(cacheRoot(), 'matrix');
  if (argv.length === 1 && argv[0] === '--report') {
    writeDoc(root);
    return 0;
  }
  const runs = argv.map((arg) => RUN.exec(arg));
  if (runs.length === 0 || runs.some((match) => match === null)) {
    process.stderr.write(USAGE);
    return 2;
  }
  let failed = 0;
  for (const match of runs) {
    if (match === null) continue;
    const [label, sourceVersion = '', targetVersion = sourceVersion] = match;
    const dir = join(root, label.replace(':', '-to-'));
    mkdirSync(dir, { recursive: true });
    if ((await runOne(label, sourceVersion, targetVersion, dir)) !== 0) failed += 1;
    writeDoc(root);
  }
  return failed === 0 ? 0 : 1;
}

runMain(main);
