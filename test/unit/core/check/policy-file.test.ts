// The pure decision of check --approver-policy: the mounted policy file.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { policyFileCheck } from '../../../../src/core/check/policy-file.ts';

describe('policyFileCheck', () => {
  it('fails an invalid file and warns an empty one', () => {
    assert.equal(policyFileCheck('/p', { ok: false, problems: ['policies[0]: bad'] }).status, 'fail');
    assert.equal(policyFileCheck('/p', { ok: true, policies: [] }).status, 'warn');
    assert.equal(policyFileCheck('/p', { ok: true, policies: ['west'] }).status, 'pass');
  });
});
