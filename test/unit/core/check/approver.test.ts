// The pure decisions on a certificate target's approver: the Lease's freshness on an injected clock, and the
// policy evaluated with the approver's own code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  approverChecks,
  firstCertificateFacts,
  policyCheck,
  type ApproverSeen,
} from '../../../../src/core/check/approver.ts';
import { buildCertificationRequest } from '../../../../src/core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair } from '../../../../src/core/pki/keys.ts';
import { evaluate } from '../../../../src/core/policy/evaluate.ts';
import { parsePolicyFile } from '../../../../src/core/policy/schema.ts';
import { ManualClock } from '../../../support/manual-clock.ts';

describe('approverChecks', () => {
  const clock = new ManualClock();
  const seen = (lease: ApproverSeen['lease'], ready = 2): ApproverSeen => ({
    namespace: 'kubeconfig-rotator',
    name: 'kubeconfig-rotator-approver',
    deployment: { replicas: 2, ready },
    lease,
  });

  it('fails an approver that is not installed with the helm install to run', () => {
    const results = approverChecks({ ...seen(undefined), deployment: undefined }, clock.now());
    assert.equal(results.length, 1);
    assert.equal(results[0]?.status, 'fail');
    assert.match(results[0].fix ?? '', /helm install kubeconfig-rotator-approver/);
  });

  it('passes a Lease renewed within its duration and fails it once the duration has passed', async () => {
    const renewed = clock.now();
    const lease = { holder: 'approver-0', renewTime: renewed, durationSeconds: 15 };
    await clock.advance(15_000);
    assert.equal(approverChecks(seen(lease), clock.now())[1]?.status, 'pass');
    await clock.advance(1_000);
    const [, stale] = approverChecks(seen(lease), clock.now());
    assert.equal(stale?.status, 'fail');
    assert.match(stale.detail, /approver-0 last renewed .* 16 s ago, longer than its 15 s duration/);
  });

  it('fails no ready replica and a released Lease', () => {
    const results = approverChecks(seen({ holder: '', renewTime: clock.now(), durationSeconds: 15 }, 0), clock.now());
    assert.deepEqual(
      results.map((result) => result.status),
      ['fail', 'fail'],
    );
    assert.match(results[1]?.detail ?? '', /held by no one/);
  });
});

describe('policyCheck with the approver evaluate()', () => {
  const keys = generateKeyPair('ecdsa-p256');
  const facts = (commonName: string) =>
    firstCertificateFacts({
      source: 'east',
      tokenUser: 'system:bootstrap:abcdef',
      csrPem: buildCertificationRequest({ commonName, organizations: [] }, keys),
      usages: clientUsagesFor('ecdsa-p256'),
      expirationSeconds: 3600,
    });
  const policy = (dryRun: boolean) => {
    const parsed = parsePolicyFile(
      `policies:\n- name: east\n  dryRun: ${String(dryRun)}\n  bootstrap: { groups: [system:bootstrappers:kubeconfig-rotator:east] }\n  identity: { commonNames: [agent-east] }\n`,
    );
    assert.ok(parsed.ok);
    return parsed.value;
  };
  const where = 'ConfigMap kubeconfig-rotator/kubeconfig-rotator-approver-policy';

  it('passes an identity the policy approves', () => {
    const result = policyCheck('east', {
      result: 'evaluated',
      where,
      commonName: 'agent-east',
      evaluation: evaluate(facts('agent-east'), policy(false)),
    });
    assert.equal(result.status, 'pass');
    assert.match(result.detail, /policy east approves/);
  });

  it('fails an identity the policy denies, with the finding and the fix', () => {
    const result = policyCheck('east', {
      result: 'evaluated',
      where,
      commonName: 'intruder',
      evaluation: evaluate(facts('intruder'), policy(false)),
    });
    assert.equal(result.status, 'fail');
    assert.match(result.detail, /denies .*CN=intruder.*identity\.commonName/);
    assert.match(result.fix ?? '', /allow CN=intruder/);
  });

  it('warns when only a dry-run policy would approve', () => {
    const result = policyCheck('east', {
      result: 'evaluated',
      where,
      commonName: 'agent-east',
      evaluation: evaluate(facts('agent-east'), policy(true)),
    });
    assert.equal(result.status, 'warn');
  });

  it('fails another source, to which no policy applies, naming the group to add', () => {
    const other = firstCertificateFacts({
      source: 'west',
      tokenUser: 'system:bootstrap:abcdef',
      csrPem: buildCertificationRequest({ commonName: 'agent-east', organizations: [] }, keys),
      usages: clientUsagesFor('ecdsa-p256'),
      expirationSeconds: 3600,
    });
    const result = policyCheck('west', {
      result: 'evaluated',
      where,
      commonName: 'agent-east',
      evaluation: evaluate(other, policy(false)),
    });
    assert.equal(result.status, 'fail');
    assert.match(result.fix ?? '', /bootstrap\.groups: \[system:bootstrappers:kubeconfig-rotator:west\]/);
  });

  it('fails a missing or invalid file, and without an identity checks only that a policy applies', () => {
    assert.equal(policyCheck('east', { result: 'absent', where }).status, 'fail');
    assert.equal(policyCheck('east', { result: 'invalid', where, problems: ['policies: bad'] }).status, 'fail');
    const applies = policyCheck('east', { result: 'applies', where, applies: true });
    assert.equal(applies.status, 'pass');
    assert.match(applies.detail, /--common-name/);
    assert.equal(policyCheck('east', { result: 'applies', where, applies: false }).status, 'fail');
  });
});
