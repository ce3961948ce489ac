import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { parseDuration } from '../../../../src/core/bootstrap/duration.ts';
import { federatedBootstrapKubeconfig } from '../../../../src/core/bootstrap/federation.ts';
import {
  bootstrapGroup,
  bootstrapPlan,
  CSR_REQUESTER_ROLE,
  redactPlan,
  sourceSecretObjects,
} from '../../../../src/core/bootstrap/plan.ts';

const input = {
  source: 'west',
  target: 'east',
  token: { id: 'abcdef', secret: '0123456789abcdef' },
  expiration: new Date('2030-01-01T00:00:00Z'),
  server: 'https://east.example:6443',
  caPem: '-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n',
  sourceNamespace: 'kubeconfig-rotator',
  secretName: 'kubeconfig-rotator-bootstrap-east',
};

const decode = (value: unknown) => Buffer.from(String(value), 'base64').toString('utf8');

describe('the bootstrap plan', () => {
  const plan = bootstrapPlan(input);

  it("puts a token in the target, in the source's own bootstrap group, with an expiration", () => {
    const [token] = plan.target;
    const data = token?.data as Record<string, string>;
    assert.equal(token?.metadata.name, 'bootstrap-token-abcdef');
    assert.equal(decode(data['auth-extra-groups']), 'system:bootstrappers:kubeconfig-rotator:west');
    assert.equal(decode(data.expiration), '2030-01-01T00:00:00Z');
    assert.equal(decode(data['token-secret']), '0123456789abcdef');
    assert.equal(token.metadata.labels?.['kubeconfig-rotator.io/source'], 'west');
  });

  it('binds only that group to a role that may only create, get, list and watch CSRs', () => {
    const [, role, binding] = plan.target;
    assert.equal(role?.metadata.name, CSR_REQUESTER_ROLE);
    assert.deepEqual(role.rules, [
      {
        apiGroups: ['certificates.k8s.io'],
        resources: ['certificatesigningrequests'],
        verbs: ['create', 'get', 'list', 'watch'],
      },
    ]);
    assert.equal(binding?.metadata.name, 'kubeconfig-rotator:bootstrap:west');
    assert.deepEqual(binding.subjects, [
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: bootstrapGroup('west') },
    ]);
  });

  it('gives the source a Secret with a kubeconfig for the token, verifying the server with its CA', () => {
    const [namespace, secret] = plan.source;
    assert.equal(namespace?.kind, 'Namespace');
    const kubeconfig = parse(decode((secret?.data as Record<string, string>).kubeconfig)) as {
      clusters: [{ cluster: Record<string, string> }];
      users: [{ user: Record<string, string> }];
    };
    assert.equal(kubeconfig.clusters[0].cluster.server, 'https://east.example:6443');
    assert.equal(decode(kubeconfig.clusters[0].cluster['certificate-authority-data']), input.caPem);
    assert.deepEqual(kubeconfig.users[0].user, { token: 'abcdef.0123456789abcdef' });
  });

  it("carries the target context's tls-server-name into the bootstrap kubeconfig, for every kind (issue 22)", () => {
    const clusterOf = (secret: { readonly [field: string]: unknown } | undefined) =>
      (parse(decode((secret?.data as Record<string, string>).kubeconfig)) as { clusters: [{ cluster: object }] })
        .clusters[0].cluster;
    const named = { ...input, tlsServerName: 'api.east' };
    assert.equal((clusterOf(bootstrapPlan(named).source[1]) as Record<string, string>)['tls-server-name'], 'api.east');
    assert.equal('tls-server-name' in clusterOf(plan.source[1]), false);
    const tokens = sourceSecretObjects({
      ...named,
      token: { value: 't', expiration: named.expiration },
      source: 'west',
    });
    assert.equal(
      (clusterOf(tokens.find((one) => one.kind === 'Secret')) as Record<string, string>)['tls-server-name'],
      'api.east',
    );
    const federated = federatedBootstrapKubeconfig({
      target: 'east',
      server: named.server,
      caPem: named.caPem,
      tlsServerName: 'api.east',
    });
    assert.equal(federated.clusters[0]?.cluster['tls-server-name'], 'api.east');
  });

  it('a dry run shows every object and no credential', () => {
    const text = JSON.stringify(redactPlan(plan));
    assert.ok(!text.includes('0123456789abcdef'));
    assert.ok(!text.includes(Buffer.from('0123456789abcdef').toString('base64')));
    assert.match(text, /"token-secret":"<redacted>"/);
    assert.match(text, /"kubeconfig":"<redacted>"/);
    assert.match(text, /"token-id":"abcdef"/);
  });
});

describe('durations', () => {
  it('reads the forms operators write', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('2d'), 172_800_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
  });
  it('refuses anything else, saying what it got', () => {
    for (const text of ['', '10', 'h', '1 h', '1x', '-1h'])
      assert.throws(() => parseDuration(text), new RegExp(`"${text}" is not a duration`));
  });
});
