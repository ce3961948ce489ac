// The pure decisions on a token target (TokenRequest permission, guardrail) and a federated one (issuer trust).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  guardrailCheck,
  guardrailUnreadableCheck,
  issuerTrustCheck,
  tokenRequestCheck,
  tokenRequestUnreadableCheck,
} from '../../../../src/core/check/token.ts';

describe('tokenRequestCheck and guardrailCheck', () => {
  it('fails a missing guardrail binding by name, and a missing ServiceAccount or permission', () => {
    const guardrail = guardrailCheck('kcr-token-guardrail.east.kubeconfig-rotator', { policy: true, binding: false });
    assert.equal(guardrail.status, 'fail');
    assert.match(guardrail.detail, /no ValidatingAdmissionPolicyBinding kcr-token-guardrail/);
    assert.equal(guardrailCheck('g', { policy: true, binding: true }).status, 'pass');
    assert.equal(tokenRequestCheck('ns/sa', { exists: false, allowed: false, reason: '' }).status, 'fail');
    assert.match(
      tokenRequestCheck('ns/sa', { exists: true, allowed: false, reason: 'RBAC' }).detail,
      /not allowed \(RBAC\)/,
    );
    assert.equal(tokenRequestCheck('ns/sa', { exists: true, allowed: true, reason: '' }).status, 'pass');
  });

  it('fails a ServiceAccount or guardrail it could not read, naming what to read', () => {
    const request = tokenRequestUnreadableCheck('ns/sa', 'forbidden');
    assert.equal(request.id, 'token.token-request');
    assert.match(
      request.detail,
      /could not read ServiceAccount ns\/sa \(and create a SubjectAccessReview\): forbidden/,
    );
    const guardrail = guardrailUnreadableCheck('g', 'forbidden');
    assert.equal(guardrail.id, 'token.guardrail');
    assert.match(guardrail.fix ?? '', /target kubeconfig whose user may read ValidatingAdmissionPolicy g/);
  });
});

describe('issuerTrustCheck', () => {
  const check = (trial: Parameters<typeof issuerTrustCheck>[3]) =>
    issuerTrustCheck('agents/agent', 'kubeconfig-rotator:east', 'source-west:', trial);

  it('passes a token reviewed under the prefix, fails one mapped elsewhere or refused, naming the bootstrap', () => {
    assert.equal(
      check({ result: 'reviewed', username: 'source-west:system:serviceaccount:agents:agent' }).status,
      'pass',
    );
    const mapped = check({ result: 'reviewed', username: 'other:agent' });
    assert.equal(mapped.status, 'fail');
    assert.match(mapped.detail, /not under the prefix source-west:/);
    const refused = check({ result: 'refused', message: 'Unauthorized' });
    assert.match(refused.detail, /refused a token of agents\/agent for audience kubeconfig-rotator:east \(401\)/);
    assert.match(refused.fix ?? '', /bootstrap --credential federated/);
  });

  it('warns, never passes, when no ServiceAccount was given, and fails when the source issued no token', () => {
    assert.equal(check({ result: 'notAsked' }).status, 'warn');
    assert.equal(check({ result: 'noToken', message: 'not found' }).status, 'fail');
  });

  it('fails a review that errored with the retry, and no release (the version checks ask for it)', () => {
    const result = check({ result: 'error', message: 'timeout' });
    assert.equal(result.detail, "the SelfSubjectReview with the source's token failed: timeout");
    assert.equal(result.fix, 'retry; if it persists, check the target apiserver');
  });
});
