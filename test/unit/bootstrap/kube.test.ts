// The bootstrap commands' minimum-version check is the one of core/kube-version.ts, on the version a /version
// answer reads as.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BootstrapError, requireMinor } from '../../../src/bootstrap/kube.ts';
import { parseKubeVersion, VALIDATING_ADMISSION_POLICY } from '../../../src/core/kube-version.ts';

const version = (minor: string, gitVersion: string) => parseKubeVersion({ major: '1', minor, gitVersion });

describe('requireMinor', () => {
  it('refuses a cluster older than the feature needs, naming the cluster, the feature and its release', () => {
    assert.throws(
      () => {
        requireMinor(version('29', 'v1.29.3'), VALIDATING_ADMISSION_POLICY, 'target');
      },
      (error: unknown) =>
        error instanceof BootstrapError &&
        error.message ===
          'the target cluster is too old: ValidatingAdmissionPolicy admissionregistration.k8s.io/v1 (the token guardrail) needs Kubernetes 1.30 or later; the cluster runs v1.29.3',
    );
  });

  it('accepts the feature\'s release and later, a managed service\'s minor ("30+") included', () => {
    requireMinor(version('30', 'v1.30.0'), VALIDATING_ADMISSION_POLICY, 'target');
    requireMinor(version('30+', 'v1.30.2-eks-1234'), VALIDATING_ADMISSION_POLICY, 'target');
    requireMinor(version('36', 'v1.36.3'), VALIDATING_ADMISSION_POLICY, 'source');
  });

  it('lets an unreadable version pass', () => {
    requireMinor(parseKubeVersion({ major: '1', minor: '' }), VALIDATING_ADMISSION_POLICY, 'target');
    requireMinor(undefined, VALIDATING_ADMISSION_POLICY, 'target');
  });
});
