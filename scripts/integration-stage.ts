// `npm run test:integration` after the build: node --test over test/integration in two runs, each with the
// global setup (test/support/global-setup.ts) that starts the source and target clusters or reuses them.
// - Every file but the long ones, one file at a time: tests share the clusters, and some (approvers with a
//   policy that denies what it does not know) act on every CSR of the target.
// - Then the long ones side by side. Each waits out a 600-s credential by design (about 12 minutes), mostly
//   asleep, and acts only on objects of its own (TestApprover decides only its own target's CSRs; the outage
//   test stops an apiserver of its own cluster), so running them together costs one wait instead of three.
// Arguments: test files, run one at a time in a single run (as `node --test` would).
import { spawn } from 'node:child_process';
import { existsSync, globSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './testbed/binaries.ts';
import { runMain } from './testbed/main.ts';

const LONG = [
  'test/integration/consumers.test.ts',
  'test/integration/cluster-profile-consumers.test.ts',
  'test/integration/outage-recovery.test.ts',
];

/** One node --test run; with KCR_TEST_RESULTS set, the matrix reporter's lines go to `results`. */
function nodeTest(files: readonly string[], concurrency: number, results: string | undefined): Promise<number> {
  const args = [
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    ...(results === undefined
      ? []
      : ['--test-reporter=./scripts/matrix/reporter.ts', `--test-reporter-destination=${results}`]),
    `--test-concurrency=${String(concurrency)}`,
    '--test-timeout=900000',
    '--test-global-setup=test/support/global-setup.ts',
    ...files,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: 'inherit' });
    child.once('error', reject);
    child.once('close', (code) => {
      resolve(code ?? 1);
    });
  });
}

async function main(argv: string[]): Promise<number> {
  const results = process.env.KCR_TEST_RESULTS;
  if (argv.length > 0) return nodeTest(argv, 1, results);
  const all = globSync('test/integration/**/*.test.ts', { cwd: REPO_ROOT }).sort();
  const missing = LONG.filter((file) => !all.includes(file));
  if (missing.length > 0) throw new Error(`integration stage: no such long test file: ${missing.join(', ')}`);
  const runs: [readonly string[], number][] = [
    [all.filter((file) => !LONG.includes(file)), 1],
    [LONG, LONG.length],
  ];
  const partial =
    results === undefined
      ? []
      : runs.map((_, index) => join(tmpdir(), `kcr-results-${String(process.pid)}-${String(index)}.jsonl`));
  let failed = 0;
  for (const [index, [files, concurrency]] of runs.entries()) {
    const code = await nodeTest(files, concurrency, partial[index]);
    if (code !== 0) failed = code;
  }
  if (results !== undefined) {
    writeFileSync(results, partial.map((file) => (existsSync(file) ? readFileSync(file, 'utf8') : '')).join(''));
    for (const file of partial) rmSync(file, { force: true });
  }
  return failed;
}

runMain(main);
