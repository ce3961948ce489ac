// What a support-matrix run showed, per feature: the integration tests' results (one JSON line each, from
// reporter.ts) grouped by the feature their file tests, as the table in docs/support-matrix.md.
import { basename } from 'node:path';

export interface TestResult {
  /** The test file, relative to the repository. */
  readonly file: string;
  readonly name: string;
  readonly outcome: 'pass' | 'fail' | 'skip';
  readonly durationMs: number;
}

export interface MatrixRun {
  /** The run as named on the command line: "1.34", or "1.34:1.37" (source:target). */
  readonly label: string;
  readonly source: string;
  readonly target: string;
  /** ISO 8601, UTC. */
  readonly date: string;
  readonly durationSeconds: number;
  /** null: the run did not finish (cut short); its results are those recorded until then. */
  readonly exitCode: number | null;
  readonly consumersSeconds: number;
  /** The build's "built <binary> in <n> s" lines, by release; empty when every binary was cached. */
  readonly builds: readonly string[];
  readonly results: readonly TestResult[];
}

interface Feature {
  readonly name: string;
  readonly matches: (result: TestResult) => boolean;
}

const inFiles =
  (...names: string[]) =>
  (result: TestResult) =>
    names.includes(basename(result.file, '.test.ts'));

const CERTIFICATE_FILES = [
  'sidecar-rotation',
  'sidecar-failures',
  'sidecar-crash',
  'approver',
  'approver-reload',
  'approver-failover',
  'csr-differential',
  'restart-action',
  'scenarios',
  'bootstrap',
];
const isCertificate = inFiles(...CERTIFICATE_FILES);
const isToken = inFiles('token-mode');
const isFederated = inFiles('federated-mode');
const isConsumers = inFiles('consumers');

export const FEATURES: readonly Feature[] = [
  { name: 'certificates (CSR issuance, approver, sidecar rotation and failures)', matches: isCertificate },
  {
    // The approver's renewal tests: a renewal is approved only on the credential-id the x509 authenticator records.
    name: 'renewal proof via credential-id',
    matches: (result) => inFiles('approver')(result) && /renewal/i.test(result.name),
  },
  { name: 'tokens + guardrail (ValidatingAdmissionPolicy v1)', matches: isToken },
  { name: 'federated (AuthenticationConfiguration)', matches: isFederated },
  { name: 'consumers (real clients reading the published credentials)', matches: isConsumers },
  {
    name: 'everything else (charts, injector, demo, testbed)',
    matches: (result) => ![isCertificate, isToken, isFederated, isConsumers].some((matches) => matches(result)),
  },
];

/** One table cell: "pass (12)", "FAIL (2 of 12)", with skips counted; "not run" when no test matched. */
export function featureCell(results: readonly TestResult[]): string {
  const count = (outcome: TestResult['outcome']) => results.filter((result) => result.outcome === outcome).length;
  const [passed, failed, skipped] = [count('pass'), count('fail'), count('skip')];
  const ran = passed + failed;
  if (ran === 0) return skipped > 0 ? `skipped (${String(skipped)})` : 'not run';
  const skips = skipped > 0 ? `, ${String(skipped)} skipped` : '';
  return failed === 0 ? `pass (${String(passed)}${skips})` : `**FAIL** (${String(failed)} of ${String(ran)}${skips})`;
}

const runTitle = (run: MatrixRun) =>
  run.source === run.target ? run.target : `source ${run.source}, target ${run.target}`;

/** The markdown table of features by run, then each run's details and every failed test by name. */
export function matrixMarkdown(runs: readonly MatrixRun[]): string {
  const header = `| feature | ${runs.map(runTitle).join(' | ')} |`;
  const rule = `|---|${runs.map(() => '---').join('|')}|`;
  const rows = FEATURES.map(
    (feature) =>
      `| ${feature.name} | ${runs.map((run) => featureCell(run.results.filter(feature.matches))).join(' | ')} |`,
  );
  const details = runs.map((run) => {
    const failed = run.results.filter((result) => result.outcome === 'fail');
    const lines = [
      `- ${runTitle(run)} (\`npm run test:matrix -- ${run.label}\`): ${run.date}, ` +
        (run.exitCode === null
          ? 'did not finish (cut short), '
          : `${String(Math.round(run.durationSeconds / 60))} min, exit code ${String(run.exitCode)}, `) +
        `${String(run.results.length)} results, consumers test ${String(run.consumersSeconds)} s; ` +
        (run.builds.length === 0 ? 'binaries cached' : `built: ${run.builds.join(', ')}`),
      ...failed.map((result) => `  - failed: \`${result.file}\`: ${result.name}`),
    ];
    return lines.join('\n');
  });
  return [header, rule, ...rows, '', ...details, ''].join('\n');
}
