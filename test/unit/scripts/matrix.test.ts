// The support matrix's table: test results grouped by the feature their file tests, a cell per run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { featureCell, matrixMarkdown, type MatrixRun, type TestResult } from '../../../scripts/matrix/features.ts';

const result = (file: string, name: string, outcome: TestResult['outcome'] = 'pass'): TestResult => ({
  file: `test/integration/${file}.test.ts`,
  name,
  outcome,
  durationMs: 10,
});

const run = (label: string, source: string, target: string, results: TestResult[]): MatrixRun => ({
  label,
  source,
  target,
  date: '2026-12-04T22:00:00.000Z',
  durationSeconds: 900,
  exitCode: results.some((entry) => entry.outcome === 'fail') ? 1 : 0,
  consumersSeconds: 300,
  builds: [],
  results,
});

describe('featureCell', () => {
  it('says pass with the count, FAIL with how many of how many, and counts skips apart', () => {
    assert.equal(featureCell([result('approver', 'a'), result('approver', 'b')]), 'pass (2)');
    assert.equal(featureCell([result('approver', 'a'), result('approver', 'b', 'fail')]), '**FAIL** (1 of 2)');
    assert.equal(featureCell([result('approver', 'a'), result('approver', 'b', 'skip')]), 'pass (1, 1 skipped)');
    assert.equal(featureCell([result('approver', 'b', 'skip')]), 'skipped (1)');
    assert.equal(featureCell([]), 'not run');
  });
});

describe('matrixMarkdown', () => {
  const results = [
    result('approver', 'approves a first certificate'),
    result('approver', 'approves a renewal by the same identity'),
    result('token-mode', 'rotates tokens'),
    result('federated-mode', 'accepts the tokens', 'fail'),
    result('consumers', 'every consumer keeps working'),
    result('charts', 'renders'),
  ];

  it('has a column per run and a row per feature, each test counted in its feature', () => {
    const table = matrixMarkdown([
      run('1.34', 'v1.34.4', 'v1.34.4', results),
      run('1.34:1.37', 'v1.34.4', 'v1.37.2', results.slice(0, 2)),
    ]).split('\n');
    assert.equal(table[0], '| feature | v1.34.4 | source v1.34.4, target v1.37.2 |');
    assert.deepEqual(table.slice(2, 8), [
      '| certificates (CSR issuance, approver, sidecar rotation and failures) | pass (2) | pass (2) |',
      '| renewal proof via credential-id | pass (1) | pass (1) |',
      '| tokens + guardrail (ValidatingAdmissionPolicy v1) | pass (1) | not run |',
      '| federated (AuthenticationConfiguration) | **FAIL** (1 of 1) | not run |',
      '| consumers (real clients reading the published credentials) | pass (1) | not run |',
      '| everything else (charts, injector, demo, testbed) | pass (1) | not run |',
    ]);
  });

  it('lists each run with its command, date and exit code, and every failed test by file and name', () => {
    const text = matrixMarkdown([run('1.34', 'v1.34.4', 'v1.34.4', results)]);
    assert.match(
      text,
      /^- v1\.34\.4 \(`npm run test:matrix -- 1\.34`\): 2026-12-04T22:00:00\.000Z, 15 min, exit code 1, 6 results, consumers test 300 s; binaries cached$/m,
    );
    assert.match(text, /^ {2}- failed: `test\/integration\/federated-mode\.test\.ts`: accepts the tokens$/m);
  });

  it('says when a run did not finish', () => {
    const text = matrixMarkdown([{ ...run('1.37', 'v1.37.2', 'v1.37.2', results.slice(0, 1)), exitCode: null }]);
    assert.match(
      text,
      /^- v1\.37\.2 \(`npm run test:matrix -- 1\.37`\): 2026-12-04T22:00:00\.000Z, did not finish \(cut short\), 1 results,/m,
    );
  });
});
