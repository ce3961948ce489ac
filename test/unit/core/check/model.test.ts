// The check report: exit code, text and JSON renderings.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  CHECK_IDS,
  docsSection,
  exitCode,
  pass,
  problem,
  renderJson,
  renderText,
} from '../../../../src/core/check/model.ts';

const ok = pass('target.reachable', 'target', 'the target cluster answers', 'https://t runs v1.36.3');
const warned = problem('warn', { id: 'target.version', group: 'target', title: 'version' }, 'unknown', 'upgrade');
const failed = problem(
  'fail',
  { id: 'certificate.bootstrap-token', group: 'certificate target', title: 'bootstrap tokens are accepted' },
  'refused (401)',
  'start the apiserver with --enable-bootstrap-token-auth',
);

describe('exitCode', () => {
  it('is 0 when all pass, 1 when any fails, and warns fail only when strict', () => {
    assert.equal(exitCode([ok], false), 0);
    assert.equal(exitCode([ok, failed], false), 1);
    assert.equal(exitCode([ok, warned], false), 0);
    assert.equal(exitCode([ok, warned], true), 1);
    assert.equal(exitCode([], true), 0);
  });
});

describe('renderText', () => {
  it('groups the lines in group order, and gives a failure its fix and docs section', () => {
    const text = renderText([failed, ok]);
    const lines = text.split('\n');
    assert.equal(lines[0], 'target');
    assert.match(lines[1] ?? '', /^ {2}\[ok\] {3}the target cluster answers: https:\/\/t runs v1\.36\.3$/);
    assert.equal(lines[3], 'certificate target');
    assert.match(lines[4] ?? '', /\[FAIL\] bootstrap tokens are accepted: refused \(401\)/);
    assert.match(lines[5] ?? '', /fix: start the apiserver with --enable-bootstrap-token-auth/);
    assert.match(lines[6] ?? '', /see: docs\/troubleshooting\.md#certificate-bootstrap-token/);
    assert.match(text, /1 passed, 0 warned, 1 failed\n$/);
  });

  it('gives a passing check no fix line', () => {
    assert.doesNotMatch(renderText([ok]), /fix:/);
  });
});

describe('renderJson', () => {
  it('states the time, the outcome and each check with its docs section where it has a fix', () => {
    const report = JSON.parse(renderJson([ok, warned], true, Date.parse('2026-01-01T00:00:00Z'))) as {
      checkedAt: string;
      ok: boolean;
      checks: { id: string; status: string; docs?: string }[];
    };
    assert.equal(report.checkedAt, '2026-01-01T00:00:00.000Z');
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.checks.map((check) => [check.id, check.status, check.docs]),
      [
        ['target.reachable', 'pass', undefined],
        ['target.version', 'warn', docsSection('target.version')],
      ],
    );
  });
});

describe('docs/troubleshooting.md', () => {
  it('has a section for every check', () => {
    const docs = readFileSync(new URL('../../../../docs/troubleshooting.md', import.meta.url), 'utf8');
    for (const id of CHECK_IDS) assert.ok(docs.includes(`<a id="${docsSection(id).split('#')[1] ?? ''}">`), id);
  });
});
