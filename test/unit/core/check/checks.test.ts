// The check's pure decisions: version gates, message selection, the Lease's freshness on an injected clock, and
// the policy evaluated with the approver's own code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  approverChecks,
  bootstrapSecretCheck,
  bootstrapTokenCheck,
  firstCertificateFacts,
  guardrailCheck,
  isTlsVerificationCode,
  issuerTrustCheck,
  policyCheck,
  publishedEndpointCheck,
  reachableCheck,
  signerCheck,
  tokenRequestCheck,
  versionChecks,
  type ApproverSeen,
} from '../../../../src/core/check/checks.ts';
import { buildCertificationRequest } from '../../../../src/core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair } from '../../../../src/core/pki/keys.ts';
import { evaluate } from '../../../../src/core/policy/evaluate.ts';
import { parsePolicyFile } from '../../../../src/core/policy/schema.ts';
import { ManualClock } from '../../../support/manual-clock.ts';

const release = (minor: number) => ({ minor, gitVersion: `v1.${String(minor)}.2` });

describe('versionChecks', () => {
  it('gates each credential kind on what it needs of the target', () => {
    const titles = (credential: 'certificate' | 'token' | 'federated') =>
      versionChecks('target', release(36), credential).map((result) => result.title);
    assert.deepEqual(titles('certificate'), ['Kubernetes 1.22+ for CSR spec.expirationSeconds']);
    assert.deepEqual(titles('token'), [
      'Kubernetes 1.28+ for SelfSubjectReview authentication.k8s.io/v1',
      'Kubernetes 1.30+ for ValidatingAdmissionPolicy admissionregistration.k8s.io/v1',
    ]);
    assert.deepEqual(titles('federated'), [
      'Kubernetes 1.28+ for SelfSubjectReview authentication.k8s.io/v1',
      'Kubernetes 1.30+ for structured authentication configuration',
    ]);
  });

  it('fails a token target on 1.29 (no ValidatingAdmissionPolicy v1) naming the release and the upgrade', () => {
    const results = versionChecks('target', release(29), 'token');
    assert.deepEqual(
      results.map((result) => result.status),
      ['pass', 'fail'],
    );
    assert.match(results[1]?.detail ?? '', /needs Kubernetes 1\.30 or later; the cluster runs v1\.29\.2/);
    assert.match(results[1]?.fix ?? '', /upgrade the target cluster to 1\.30/);
  });

  it('warns (a standalone sidecar needs no native sidecars) a source before 1.29, and passes 1.29 itself', () => {
    const [old] = versionChecks('source', release(28), 'certificate');
    assert.equal(old?.status, 'warn');
    assert.match(old.fix ?? '', /run the sidecar standalone/);
    assert.equal(versionChecks('source', release(29), 'certificate')[0]?.status, 'pass');
  });

  it('warns, not passes, when the version could not be read', () => {
    const [result] = versionChecks('target', undefined, 'federated');
    assert.equal(result?.status, 'warn');
  });
});

describe('reachableCheck', () => {
  it('tells a refused credential from a network problem', () => {
    const refused = reachableCheck('target', { ok: false, server: 'https://t', status: 401, message: 'Unauthorized' });
    assert.equal(refused.status, 'fail');
    assert.match(refused.fix ?? '', /credential is not accepted/);
    const down = reachableCheck('target', {
      ok: false,
      server: 'https://t',
      status: undefined,
      message: 'ECONNREFUSED',
    });
    assert.match(down.fix ?? '', /server address, CA and network path/);
    assert.equal(reachableCheck('source', { ok: true, server: 'https://s', version: release(36) }).status, 'pass');
  });
});

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
});

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

describe('token and source checks', () => {
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

  it('fails an absent bootstrap Secret with the bootstrap command', () => {
    const result = bootstrapSecretCheck('ns/s', { exists: false, hasKubeconfig: false });
    assert.equal(result.status, 'fail');
    assert.match(result.fix ?? '', /kubeconfig-rotator bootstrap/);
    assert.equal(bootstrapSecretCheck('ns/s', { exists: true, hasKubeconfig: true }).status, 'pass');
  });
});

describe('publishedEndpointCheck', () => {
  const endpoint = { server: 'https://10.0.0.1:6443', tlsServerName: 'api.east' };

  it('passes any HTTP answer, fails a certificate that does not verify, and only warns an unreachable server', () => {
    assert.equal(publishedEndpointCheck('Secret a/b', endpoint, { result: 'answered' }).status, 'pass');
    const tls = publishedEndpointCheck('Secret a/b', endpoint, { result: 'tls', message: 'altnames' });
    assert.equal(tls.status, 'fail');
    assert.match(tls.detail, /does not verify with the kubeconfig's CA for name api\.east: altnames/);
    assert.match(tls.fix ?? '', /run bootstrap again/);
    const away = publishedEndpointCheck('Secret a/b', endpoint, { result: 'unreachable', message: 'ETIMEDOUT' });
    assert.equal(away.status, 'warn');
    assert.match(away.detail, /not checked/);
    assert.equal(publishedEndpointCheck('Secret a/b', endpoint, { result: 'invalid', message: 'yaml' }).status, 'fail');
  });

  it("tells Node's certificate verification codes from network ones", () => {
    for (const code of [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'CERT_HAS_EXPIRED',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    ])
      assert.ok(isTlsVerificationCode(code), code);
    for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'ECONNRESET'])
      assert.ok(!isTlsVerificationCode(code), code);
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
});
