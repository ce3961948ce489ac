// What `bootstrap --credential federated` gives a target, as data: the kube-apiserver's own handling of it
// is tested in test/integration/federated-mode.test.ts; here, quoting, convergence and EKS's limits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  authenticationConfigVersion,
  eksIdentityProviderConfig,
  federatedUser,
  jwtAuthenticator,
  userPrefixProblem,
  withAuthenticator,
  type FederationInput,
} from '../../../../src/core/bootstrap/federation.ts';

const input: FederationInput = {
  issuerUrl: 'https://west.example:6443',
  audience: 'kubeconfig-rotator:east',
  userPrefix: 'source-west:',
  accounts: [
    { namespace: 'agents', name: 'admiralty' },
    { namespace: 'argocd', name: 'argocd-application-controller' },
  ],
};

describe('federation', () => {
  it('maps the token to a prefixed user and admits only the named ServiceAccounts', () => {
    const authenticator = jwtAuthenticator(input) as {
      claimValidationRules: { expression: string }[];
      claimMappings: { username: { expression: string } };
    };
    assert.equal(
      authenticator.claimValidationRules[0]?.expression,
      'claims.sub in ["system:serviceaccount:agents:admiralty", "system:serviceaccount:argocd:argocd-application-controller"]',
    );
    assert.equal(authenticator.claimMappings.username.expression, '"source-west:" + claims.sub');
    assert.equal(
      federatedUser(input, { namespace: 'agents', name: 'admiralty' }),
      'source-west:system:serviceaccount:agents:admiralty',
    );
  });

  it('the authenticator refuses users and groups in system: whatever the prefix (issue 22), and the prefix is checked', () => {
    const authenticator = jwtAuthenticator(input) as { userValidationRules?: { expression: string }[] };
    assert.deepEqual(
      authenticator.userValidationRules?.map((rule) => rule.expression),
      ['!user.username.startsWith("system:")', 'user.groups.all(group, !group.startsWith("system:"))'],
    );
    assert.equal(userPrefixProblem('source-west:'), undefined);
    assert.match(userPrefixProblem('') ?? '', /must not be empty/);
    assert.match(userPrefixProblem('system:x') ?? '', /must not start with system:/);
  });

  it('a re-run replaces its own entry and keeps other sources and fields', () => {
    const other = { issuer: { url: 'https://north.example', audiences: ['x'] } };
    const existing = {
      apiVersion: 'apiserver.config.k8s.io/v1',
      kind: 'AuthenticationConfiguration',
      jwt: [other, jwtAuthenticator({ ...input, audience: 'old' })],
      anonymous: { enabled: false },
    };
    const merged = withAuthenticator(existing, jwtAuthenticator(input));
    assert.equal(merged.jwt.length, 2);
    assert.deepEqual(merged.jwt[0], other);
    assert.deepEqual((merged.jwt[1] as { issuer: { audiences: string[] } }).issuer.audiences, [
      'kubeconfig-rotator:east',
    ]);
    assert.deepEqual((merged as { anonymous?: unknown }).anonymous, { enabled: false });
    assert.equal(withAuthenticator(undefined, jwtAuthenticator(input)).jwt.length, 1);
  });

  it('EKS: one ServiceAccount per identity provider (requiredClaims takes one value)', () => {
    assert.throws(
      () => eksIdentityProviderConfig({ ...input, clusterName: 'prod', name: 'kcr-west' }),
      /one ServiceAccount/,
    );
    const one = eksIdentityProviderConfig({
      ...input,
      accounts: [{ namespace: 'agents', name: 'admiralty' }],
      clusterName: 'prod',
      name: 'kcr-west',
    });
    assert.deepEqual(one.oidc.requiredClaims, { sub: 'system:serviceaccount:agents:admiralty' });
    assert.equal(one.oidc.clientId, 'kubeconfig-rotator:east');
  });

  it('writes the configuration version the target reads: v1beta1 on 1.30-1.33, v1 from 1.34; an existing file keeps its own', () => {
    assert.equal(authenticationConfigVersion(30), 'apiserver.config.k8s.io/v1beta1');
    assert.equal(authenticationConfigVersion(33), 'apiserver.config.k8s.io/v1beta1');
    assert.equal(authenticationConfigVersion(34), 'apiserver.config.k8s.io/v1');
    assert.equal(
      withAuthenticator(undefined, jwtAuthenticator(input), authenticationConfigVersion(31)).apiVersion,
      'apiserver.config.k8s.io/v1beta1',
    );
    const existing = { apiVersion: 'apiserver.config.k8s.io/v1beta1', kind: 'AuthenticationConfiguration', jwt: [] };
    assert.equal(
      withAuthenticator(existing, jwtAuthenticator(input), 'apiserver.config.k8s.io/v1').apiVersion,
      'apiserver.config.k8s.io/v1beta1',
    );
  });
});
