// The pure decisions on each cluster as a whole: the version gates of each credential kind and role, a refused
// credential told from a network problem, and the charts' alerts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { alertsCheck, reachableCheck, versionChecks } from '../../../../src/core/check/cluster.ts';

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

describe('alertsCheck', () => {
  it('passes without the CRD, warns a CRD without our rule, passes with it', () => {
    const absent = alertsCheck('source', { result: 'noCrd' });
    assert.equal(absent.status, 'pass');
    assert.match(absent.detail, /keep prometheusRule\.enabled and serviceMonitor\.enabled off/);
    const missing = alertsCheck('target', { result: 'crd', rules: [] });
    assert.equal(missing.status, 'warn');
    assert.match(missing.fix ?? '', /helm upgrade kubeconfig-rotator-approver with prometheusRule\.enabled=true/);
    assert.equal(alertsCheck('source', { result: 'crd', rules: ['ns/r'] }).status, 'pass');
    assert.equal(alertsCheck('source', { result: 'unreadable', message: 'HTTP 403' }).status, 'fail');
  });
});
