import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bootstrapTokenSecret,
  bootstrapTokenString,
  bootstrapUser,
  csrRequesterRbac,
  generateBootstrapToken,
} from '../../../../src/core/bootstrap/token.ts';

/** A random source replaying the given bytes in a loop. */
function replay(bytes: number[]): (count: number) => Uint8Array {
  let next = 0;
  return (count) => Uint8Array.from({ length: count }, () => bytes[next++ % bytes.length] ?? 0);
}

describe('bootstrap tokens', () => {
  it('draws a 6-character id and a 16-character secret from [a-z0-9]', () => {
    const token = generateBootstrapToken(replay([0, 1, 25, 26, 35]));
    assert.equal(token.id, 'abz09a');
    assert.equal(token.secret, 'bz09abz09abz09ab');
    assert.match(bootstrapTokenString(token), /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
  });

  it('skips bytes that would bias the alphabet (252..255)', () => {
    const token = generateBootstrapToken(replay([252, 253, 254, 255, 36]));
    assert.equal(token.id, 'aaaaaa');
  });

  it('renders the Secret the apiserver authenticates, with an RFC 3339 expiration', () => {
    const token = { id: 'abcdef', secret: '0123456789abcdef' };
    const secret = bootstrapTokenSecret(token, {
      expiration: new Date('2030-01-02T03:04:05.678Z'),
      extraGroups: ['system:bootstrappers:kubeconfig-rotator:east'],
      description: 'for east',
    });
    assert.equal(secret.metadata.name, 'bootstrap-token-abcdef');
    assert.equal(secret.metadata.namespace, 'kube-system');
    assert.equal(secret.type, 'bootstrap.kubernetes.io/token');
    assert.deepEqual(secret.stringData, {
      description: 'for east',
      'token-id': 'abcdef',
      'token-secret': '0123456789abcdef',
      expiration: '2030-01-02T03:04:05Z',
      'usage-bootstrap-authentication': 'true',
      'auth-extra-groups': 'system:bootstrappers:kubeconfig-rotator:east',
    });
    assert.equal(bootstrapUser(token), 'system:bootstrap:abcdef');
  });

  it('refuses an extra group the apiserver would ignore', () => {
    assert.throws(
      () =>
        bootstrapTokenSecret(
          { id: 'abcdef', secret: '0123456789abcdef' },
          { expiration: new Date(0), extraGroups: ['east'], description: '' },
        ),
      /group "east" must start with "system:bootstrappers:"/,
    );
  });

  it('grants the group only create/get/list/watch on CSRs', () => {
    const { clusterRole, clusterRoleBinding } = csrRequesterRbac('requester', 'system:bootstrappers:x');
    assert.deepEqual(clusterRole.rules, [
      {
        apiGroups: ['certificates.k8s.io'],
        resources: ['certificatesigningrequests'],
        verbs: ['create', 'get', 'list', 'watch'],
      },
    ]);
    assert.deepEqual(clusterRoleBinding.subjects, [
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:bootstrappers:x' },
    ]);
    assert.equal(clusterRoleBinding.roleRef.name, 'requester');
  });
});
