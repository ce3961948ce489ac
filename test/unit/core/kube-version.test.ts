// The Kubernetes releases our features need, against a cluster's /version.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parseKubeVersion,
  renewalProofProblems,
  targetRequirements,
  versionProblems,
  type KubeVersion,
} from '../../../src/core/kube-version.ts';

const release = (minor: number): KubeVersion => ({ minor, gitVersion: `v1.${String(minor)}.0` });

describe('parseKubeVersion', () => {
  it('reads a plain release', () => {
    assert.deepEqual(parseKubeVersion({ major: '1', minor: '34', gitVersion: 'v1.34.4' }), {
      minor: 34,
      gitVersion: 'v1.34.4',
    });
  });

  it('reads a managed service minor with a suffix ("30+") by its leading digits', () => {
    assert.deepEqual(parseKubeVersion({ major: '1', minor: '30+', gitVersion: 'v1.30.2-eks-1234' }), {
      minor: 30,
      gitVersion: 'v1.30.2-eks-1234',
    });
  });

  it('is undefined for anything that is not a 1.x version (so the version counts as unknown)', () => {
    for (const body of [undefined, null, 'v1.34', {}, { major: '2', minor: '0' }, { major: '1', minor: '' }])
      assert.equal(parseKubeVersion(body), undefined, JSON.stringify(body));
  });
});

describe('sidecar targets', () => {
  const problems = (credential: 'certificate' | 'token' | 'federated', minor: number) =>
    versionProblems(release(minor), targetRequirements(credential));

  it('certificate targets need CSR expirationSeconds (1.22)', () => {
    assert.deepEqual(problems('certificate', 22), []);
    assert.deepEqual(problems('certificate', 21), [
      'CSR spec.expirationSeconds (the certificate lifetime the sidecar asks for) needs Kubernetes 1.22 or later; the cluster runs v1.21.0',
    ]);
  });

  it('certificate targets with federated bootstrap also need structured authentication (1.30), naming the fallback', () => {
    const federated = (minor: number) =>
      versionProblems(release(minor), targetRequirements('certificate', 'federated'));
    assert.deepEqual(federated(30), []);
    assert.deepEqual(federated(29), [
      "federated bootstrap (bootstrap.with: federated: the target's jwt authenticator of structured authentication configuration accepts the source's ServiceAccount tokens; on an older target use bootstrap.with: token) needs Kubernetes 1.30 or later; the cluster runs v1.29.0",
    ]);
    assert.deepEqual(versionProblems(release(29), targetRequirements('certificate', 'token')), []);
  });

  it('token targets need SelfSubjectReview v1 (1.28)', () => {
    assert.deepEqual(problems('token', 28), []);
    assert.match(problems('token', 27).join('\n'), /^SelfSubjectReview .* needs Kubernetes 1\.28 or later/);
  });

  it('federated targets need structured authentication (1.30), and name every missing feature', () => {
    assert.deepEqual(problems('federated', 30), []);
    assert.match(problems('federated', 29).join('\n'), /^structured authentication .* needs Kubernetes 1\.30/);
    assert.equal(problems('federated', 27).length, 2);
  });
});

describe('renewalProofProblems', () => {
  const policies = [
    { name: 'strict', renewal: true },
    { renewal: true },
    { name: 'names', renewal: 'trustUsername' },
    { name: 'first-only', renewal: false },
  ];

  it('accepts every policy from 1.32, where the x509 authenticator records the credential-id', () => {
    assert.deepEqual(renewalProofProblems(policies, release(32)), []);
  });

  it('names each policy that needs the proof on an older cluster, by field path, with the way out', () => {
    const problems = renewalProofProblems(policies, release(31));
    assert.equal(problems.length, 2);
    assert.match(
      problems[0] ?? '',
      /^policies\[0\] \(strict\)\.renewal: authentication\.kubernetes\.io\/credential-id/,
    );
    assert.match(
      problems[0] ?? '',
      /needs Kubernetes 1\.32 or later; the cluster runs v1\.31\.0: every renewal would be denied/,
    );
    assert.match(problems[1] ?? '', /^policies\[1\]\.renewal: /);
    assert.match(problems[1] ?? '', /renewal: trustUsername accepts the username alone/);
  });
});
