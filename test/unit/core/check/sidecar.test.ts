// The pure decisions of check --config: a sidecar's bootstrap kubeconfig, target endpoint, bootstrap credential,
// what it published, and its RBAC.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bootstrapCredentialCheck,
  bootstrapKubeconfigCheck,
  publishedCheck,
  rbacCheck,
  targetEndpointCheck,
} from '../../../../src/core/check/sidecar.ts';

describe('publishedCheck', () => {
  it('passes only above the renewal margin, and fails an expired or nearly expired credential', () => {
    const read = (secondsLeft: number) => ({ result: 'read', identity: 'CN=a', secondsLeft }) as const;
    assert.equal(publishedCheck('east', 'Secret ns/x', 420, read(421)).status, 'pass');
    const near = publishedCheck('east', 'Secret ns/x', 420, read(420));
    assert.equal(near.status, 'fail');
    assert.match(near.detail, /renewal is failing/);
    assert.match(publishedCheck('east', 'Secret ns/x', 420, read(-5)).detail, /expired 5 s ago/);
    assert.equal(publishedCheck('east', 'directory /o', 420, { result: 'notMounted' }).status, 'warn');
    assert.equal(publishedCheck('east', 'Secret ns/x', 420, { result: 'absent' }).status, 'fail');
    const quoted = publishedCheck(
      'east',
      'Secret ns/x',
      420,
      { result: 'absent' },
      {
        reason: 'CertificateDenied',
        message: 'east: CSR c was denied: PolicyDenied',
      },
    );
    assert.match(
      quoted.fix ?? '',
      /latest Warning Event says why \(CertificateDenied: east: CSR c was denied: PolicyDenied\)/,
    );
  });
});

describe('bootstrapCredentialCheck', () => {
  it('a refused bootstrap token is expected once a valid credential is published', () => {
    const refused = { result: 'refused', message: 'HTTP 401' } as const;
    assert.equal(bootstrapCredentialCheck('east', 'certificate', refused, true).status, 'pass');
    const failed = bootstrapCredentialCheck('east', 'certificate', refused, false);
    assert.equal(failed.status, 'fail');
    assert.match(failed.detail, /--enable-bootstrap-token-auth/);
    assert.match(failed.fix ?? '', /kubeconfig-rotator check --source-name/);
    assert.equal(
      bootstrapCredentialCheck('east', 'token', { result: 'reviewed', username: 'u' }, false).status,
      'pass',
    );
  });
});

describe('bootstrapKubeconfigCheck and targetEndpointCheck', () => {
  it('a missing bootstrap kubeconfig fails unless a valid credential is published', () => {
    assert.equal(bootstrapKubeconfigCheck('east', '/b', { result: 'absent', publishedValid: false }).status, 'fail');
    assert.equal(bootstrapKubeconfigCheck('east', '/b', { result: 'absent', publishedValid: true }).status, 'warn');
  });

  it('an unreachable target fails in a pod (the sidecar connects from there)', () => {
    const endpoint = { server: 'https://t:6443', tlsServerName: undefined };
    assert.equal(
      targetEndpointCheck('east', endpoint, { result: 'unreachable', message: 'ECONNREFUSED' }).status,
      'fail',
    );
    assert.equal(targetEndpointCheck('east', endpoint, { result: 'answered' }).status, 'pass');
  });
});

describe('rbacCheck', () => {
  it('lists every access denied or not asked', () => {
    const result = rbacCheck('ServiceAccount ns/sa', [
      { access: { verb: 'create', resource: 'events', namespace: 'ns' }, allowed: true },
      { access: { verb: 'update', resource: 'secrets', namespace: 'ns', name: 'x' }, allowed: false },
      { access: { verb: 'get', resource: 'secrets', namespace: 'ns', name: 'x' }, allowed: 'HTTP 403' },
    ]);
    assert.equal(result.status, 'fail');
    assert.match(result.detail, /update secrets\/x in ns: denied; get secrets\/x in ns: not asked \(HTTP 403\)/);
  });
});
