// `bootstrap`'s flags are checked before any cluster is contacted: every problem at once, in a stable order,
// or the one mode they ask for with its defaults resolved.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkBootstrapFlags, type BootstrapFlags } from '../../../../src/core/bootstrap/flags.ts';

const base: BootstrapFlags = { source: 'west', target: 'east', namespace: 'kubeconfig-rotator', ttl: '1h' };

const problemsOf = (flags: Partial<BootstrapFlags>): readonly string[] => {
  const result = checkBootstrapFlags({ ...base, ...flags });
  return result.ok ? [] : result.problems;
};
const modeOf = (flags: Partial<BootstrapFlags>) => {
  const result = checkBootstrapFlags({ ...base, ...flags });
  assert.ok(result.ok, result.ok ? '' : result.problems.join('\n'));
  return result.mode;
};

describe('bootstrap flags: the mode they ask for', () => {
  it('no --credential is a certificate target bootstrapped with a bootstrap token, for the --ttl', () => {
    assert.deepEqual(modeOf({}), { kind: 'certificate', ttlMs: 3_600_000 });
  });

  it('--credential token defaults to the kubeconfig-rotator namespace, a 24h guardrail and the apiserver audiences', () => {
    assert.deepEqual(modeOf({ credential: 'token' }), {
      kind: 'token',
      ttlMs: 3_600_000,
      targetNamespace: 'kubeconfig-rotator',
      guardrail: { maxExpirationSeconds: 86_400, audiences: [] },
    });
    assert.deepEqual(
      modeOf({ credential: 'token', targetNamespace: 'agents', maxTokenTtl: '2h', audiences: ['vault'] }),
      {
        kind: 'token',
        ttlMs: 3_600_000,
        targetNamespace: 'agents',
        guardrail: { maxExpirationSeconds: 7_200, audiences: ['vault'] },
      },
    );
  });

  it("--credential federated defaults the audience and the user prefix to the clusters' names", () => {
    assert.deepEqual(modeOf({ credential: 'federated', federated: { serviceAccounts: ['agents/admiralty'] } }), {
      kind: 'federated',
      federation: {
        source: 'west',
        target: 'east',
        namespace: 'kubeconfig-rotator',
        serviceAccounts: [{ namespace: 'agents', name: 'admiralty' }],
        audience: 'kubeconfig-rotator:east',
        userPrefix: 'source-west:',
        targetType: 'self-managed',
        authenticationConfig: undefined,
        allowAnonymousDiscovery: false,
        clusterRoles: [],
      },
    });
  });

  it('--bootstrap-with federated is a certificate target trusting the source like a federated one', () => {
    const mode = modeOf({
      bootstrapWith: 'federated',
      audiences: ['kcr:east'],
      federated: { serviceAccounts: ['agents/a', 'agents/b'], targetType: 'eks', allowAnonymousDiscovery: true },
    });
    assert.equal(mode.kind, 'certificate-federated');
    assert.equal(mode.federation.audience, 'kcr:east');
    assert.equal(mode.federation.targetType, 'eks');
    assert.equal(mode.federation.allowAnonymousDiscovery, true);
    assert.deepEqual(mode.federation.serviceAccounts, [
      { namespace: 'agents', name: 'a' },
      { namespace: 'agents', name: 'b' },
    ]);
  });
});

describe('bootstrap flags: every problem at once', () => {
  const cases: readonly (readonly [string, Partial<BootstrapFlags>, readonly string[]])[] = [
    [
      'names that cannot be DNS labels, the target namespace included',
      { source: 'West', target: 'a'.repeat(64), targetNamespace: 'a_b' },
      [
        '--source-name "West" must be a DNS label (a-z, 0-9, -; at most 63 characters)',
        `--target-name "${'a'.repeat(64)}" must be a DNS label (a-z, 0-9, -; at most 63 characters)`,
        '--target-namespace "a_b" must be a DNS label (a-z, 0-9, -; at most 63 characters)',
      ],
    ],
    [
      'an unknown credential and an unknown way to bootstrap',
      { credential: 'password', bootstrapWith: 'oidc' },
      [
        '--credential password must be certificate, token or federated',
        '--bootstrap-with oidc must be token or federated',
      ],
    ],
    [
      '--bootstrap-with for a credential other than certificate',
      { credential: 'token', bootstrapWith: 'token' },
      ['--bootstrap-with is for --credential certificate only'],
    ],
    ['a certificate ttl shorter than 10 seconds', { ttl: '5s' }, ['--ttl 5s must be between 10s and 7d']],
    ['an unreadable ttl', { ttl: 'soon' }, ['--ttl: "soon" is not a duration (examples: 90s, 30m, 1h, 1h30m)']],
    ['a ttl longer than 7 days', { ttl: '8d' }, ['--ttl 8d must be between 10s and 7d']],
    [
      'a token ttl under 10 minutes (the TokenRequest minimum), a max token ttl not in whole seconds, bad audiences',
      { credential: 'token', ttl: '5m', maxTokenTtl: '600500ms', audiences: ['', 'a\tb'] },
      [
        '--ttl 5m must be between 10m and 7d',
        '--max-token-ttl 600500ms must be whole seconds, at least 10m',
        '--audience "" must be non-empty, without control characters',
        '--audience "a\\tb" must be non-empty, without control characters',
      ],
    ],
    [
      'a token ttl longer than the max token ttl',
      { credential: 'token', ttl: '2h', maxTokenTtl: '1h' },
      ['--ttl 2h is longer than --max-token-ttl 1h'],
    ],
    [
      'an unreadable max token ttl',
      { credential: 'token', maxTokenTtl: 'day' },
      ['--max-token-ttl: "day" is not a duration (examples: 90s, 30m, 1h, 1h30m)'],
    ],
    [
      'token and federated flags given to a certificate target',
      { maxTokenTtl: '1h', audiences: ['vault'], federated: { serviceAccounts: ['agents/admiralty'] } },
      [
        '--max-token-ttl is for --credential token only',
        '--audience is for --credential token or federated, or --bootstrap-with federated, only',
        '--service-account is for --credential federated only',
      ],
    ],
    [
      'a federated target without a ServiceAccount, of an unknown type, with two audiences, a reserved prefix',
      {
        credential: 'federated',
        audiences: ['a', 'b'],
        federated: { serviceAccounts: [], targetType: 'gke', userPrefix: 'system:west:' },
      },
      [
        '--service-account NAMESPACE/NAME (the source ServiceAccount the target admits) is required',
        '--target-type gke must be self-managed or eks',
        '--audience: a federated target takes one audience',
        '--user-prefix "system:west:" must not start with system:: Kubernetes reserves those names',
      ],
    ],
    [
      'a malformed ServiceAccount, and an authentication config for EKS',
      {
        credential: 'federated',
        federated: { serviceAccounts: ['admiralty', 'a/b/c'], targetType: 'eks', authenticationConfig: '/etc/a.yaml' },
      },
      [
        '--service-account admiralty must be NAMESPACE/NAME',
        '--service-account a/b/c must be NAMESPACE/NAME',
        '--authentication-config is for self-managed targets (EKS takes an identity provider)',
      ],
    ],
    [
      '--cluster-role with --bootstrap-with federated, whose bootstrap user is granted nothing else',
      { bootstrapWith: 'federated', federated: { serviceAccounts: ['agents/admiralty'], clusterRoles: ['view'] } },
      [
        "--cluster-role is for --credential federated: with --bootstrap-with federated the certificate's identity is what is granted, not the bootstrap user",
      ],
    ],
    [
      'problems of every group, listed in the order the flags are checked',
      { source: 'West', credential: 'token', bootstrapWith: 'federated', ttl: 'x', audiences: [''] },
      [
        '--source-name "West" must be a DNS label (a-z, 0-9, -; at most 63 characters)',
        '--bootstrap-with is for --credential certificate only',
        '--ttl: "x" is not a duration (examples: 90s, 30m, 1h, 1h30m)',
        '--audience "" must be non-empty, without control characters',
      ],
    ],
  ];
  for (const [name, flags, problems] of cases)
    it(name, () => {
      assert.deepEqual(problemsOf(flags), problems);
    });
});
