// The pure decisions on a certificate target's bootstrap tokens and signer: each trial's cause and fix.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootstrapTokenCheck, signerCheck } from '../../../../src/core/check/certificate.ts';

describe('bootstrapTokenCheck', () => {
  it('passes a token reviewed in the source group', () => {
    const result = bootstrapTokenCheck('east', {
      result: 'reviewed',
      username: 'system:bootstrap:abcdef',
      groups: ['system:bootstrappers:kubeconfig-rotator:east', 'system:authenticated'],
    });
    assert.equal(result.status, 'pass');
  });

  it('names --enable-bootstrap-token-auth and the alternatives when the token is refused', () => {
    const result = bootstrapTokenCheck('east', { result: 'refused', message: 'Unauthorized' });
    assert.equal(result.status, 'fail');
    assert.match(result.detail, /401/);
    assert.match(result.fix ?? '', /--enable-bootstrap-token-auth/);
    assert.match(result.fix ?? '', /--credential token or --credential federated/);
  });

  it('fails a token reviewed outside the group, and a token it could not create, each with its own cause', () => {
    const other = bootstrapTokenCheck('east', { result: 'reviewed', username: 'x', groups: ['system:authenticated'] });
    assert.match(other.detail, /not in group system:bootstrappers:kubeconfig-rotator:east/);
    const notCreated = bootstrapTokenCheck('east', { result: 'notCreated', message: 'forbidden' });
    assert.match(notCreated.detail, /could not create/);
  });

  it('fails a review that errored, naming the release SelfSubjectReview needs (no certificate version check does)', () => {
    const result = bootstrapTokenCheck('east', { result: 'error', message: 'timeout' });
    assert.equal(result.detail, "the SelfSubjectReview with the check's token failed: timeout");
    assert.equal(
      result.fix,
      'retry; if it persists, check the target apiserver (SelfSubjectReview needs Kubernetes 1.28)',
    );
  });
});

describe('signerCheck', () => {
  it('passes an issued CSR, and fails one unsigned within the bound naming csrsigning and the alternatives', () => {
    assert.equal(signerCheck({ result: 'issued', ms: 1200 }).detail, 'a CSR the check approved was signed in 1.2 s');
    const timeout = signerCheck({ result: 'timeout', boundMs: 30_000 });
    assert.equal(timeout.status, 'fail');
    assert.match(timeout.detail, /not signed within 30\.0 s: .*csrsigning/);
    assert.match(timeout.fix ?? '', /--credential token or --credential federated/);
  });

  it('names another approver for a Denied CSR, and warns (never passes) when skipped', () => {
    const denied = signerCheck({ result: 'refused', condition: 'Denied', message: 'no policy' });
    assert.match(denied.fix ?? '', /only one approver may serve this signer/);
    assert.equal(signerCheck({ result: 'skipped' }).status, 'warn');
  });
});
