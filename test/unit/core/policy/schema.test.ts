import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchesPattern, quote } from '../../../../src/core/policy/names.ts';
import { parsePolicyFile } from '../../../../src/core/policy/schema.ts';
import { ALIAS_BOMB } from '../../../support/hostile-yaml.ts';

function problems(yaml: string): string[] {
  const parsed = parsePolicyFile(yaml);
  assert.ok(!parsed.ok, 'expected the file to be refused');
  return parsed.problems.map((problem) => `${String(problem.line)}: ${problem.path}: ${problem.message}`);
}

describe('the policy file', () => {
  it('a minimal file gets the documented defaults', () => {
    const parsed = parsePolicyFile(`
policies:
  - name: cluster-a
    bootstrap: { groups: ['system:bootstrappers:kcr:cluster-a'] }
    identity: { commonNames: [agent-a] }
`);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value, {
      signerName: 'kubernetes.io/kube-apiserver-client',
      denyUnmatched: false,
      policies: [
        {
          name: 'cluster-a',
          dryRun: false,
          bootstrap: { users: [], groups: ['system:bootstrappers:kcr:cluster-a'], federatedUsers: [] },
          identity: { commonNames: ['agent-a'], organizations: [] },
          renewal: true,
          maxExpirationSeconds: 86_400,
          subjectAccessReview: false,
        },
      ],
    });
  });

  it('a review given as an object gets defaults for what it leaves out', () => {
    const parsed = parsePolicyFile(`
policies:
  - name: a
    identity: { commonNames: [agent-a] }
    subjectAccessReview: { verb: use }
`);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value.policies[0]?.subjectAccessReview, {
      verb: 'use',
      group: 'certificates.k8s.io',
      resource: 'certificatesigningrequests',
      subresource: 'kubeconfig-rotator',
    });
  });

  it('every problem of a bad file is listed at once, with its field path and line', () => {
    assert.deepEqual(
      problems(`signerName: not-a-signer
denyUnmatched: sometimes
policies:
  - name: Cluster_A
    bootstrap: { groups: [] }
    identity: { commonNames: ['system:admin'], organizations: ['system:masters', ''] }
    maxExpirationSeconds: 60
    colour: blue
  - name: b
    renewal: false
    identity: { commonNames: [] }
  - name: b
    bootstrap: { users: [x] }
    identity: { commonNames: [y] }
`),
      [
        '1: signerName: must be <domain>/<path>, e.g. kubernetes.io/kube-apiserver-client',
        '2: denyUnmatched: Invalid input: expected boolean, received string',
        '4: policies[0].name: must be lowercase letters, digits, "-" or "." (at most 63), starting and ending alphanumeric',
        '6: policies[0].identity.commonNames[0]: must not start with "system:": system identities are never approved',
        '6: policies[0].identity.organizations[0]: must not start with "system:": system identities are never approved',
        '6: policies[0].identity.organizations[1]: must not be empty',
        '7: policies[0].maxExpirationSeconds: Too small: expected number to be >=600',
        '8: policies[0].colour: unknown field',
        '11: policies[1].identity.commonNames: must allow at least one common name',
        '9: policies[1].bootstrap: names no bootstrap user, group or federated user, and renewal is off: the policy can never apply',
        '12: policies[2].name: duplicates the policy name "b"',
      ],
    );
  });

  it('a file that is not YAML is refused with its line', () => {
    assert.deepEqual(problems('policies: [\n'), [
      '2: : invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  it('a YAML alias bomb is an invalid file, not an exception', () => {
    assert.deepEqual(problems(ALIAS_BOMB), [
      'undefined: : invalid YAML: Excessive alias count indicates a resource exhaustion attack',
    ]);
  });

  it('bootstrap groups that admit requesters beyond one source cluster are refused by field path', () => {
    const shared = [
      'system:authenticated',
      'system:unauthenticated',
      'system:bootstrappers',
      'system:serviceaccounts',
      'system:serviceaccounts:kube-system',
      'system:nodes',
      'system:masters',
    ];
    assert.deepEqual(
      problems(`
policies:
  - name: a
    bootstrap: { groups: [${shared.map((group) => `'${group}'`).join(', ')}, 'system:bootstrappers:kcr:a'] }
    identity: { commonNames: [agent-a] }
`),
      shared.map(
        (_group, index) =>
          `4: policies[0].bootstrap.groups[${String(index)}]: admits requesters beyond one source cluster (every user, token, ServiceAccount, node or admin of that kind): name a group of your own bootstrap tokens`,
      ),
    );
  });

  it("federated bootstrap users start with a source's prefix: a leading * or a system: name is refused by field path", () => {
    const parsed = parsePolicyFile(`
policies:
  - name: west
    bootstrap: { federatedUsers: ['source-west:system:serviceaccount:agents:*'] }
    identity: { commonNames: [agent-west] }
`);
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.value.policies[0]?.bootstrap, {
      users: [],
      groups: [],
      federatedUsers: ['source-west:system:serviceaccount:agents:*'],
    });
    assert.deepEqual(
      problems(`
policies:
  - name: west
    bootstrap: { federatedUsers: ['*:system:serviceaccount:agents:admiralty', 'system:serviceaccount:agents:admiralty', ''] }
    identity: { commonNames: [agent-west] }
`),
      [
        "4: policies[0].bootstrap.federatedUsers[0]: must start with the source's user prefix (e.g. source-west:system:serviceaccount:agents:*), not *: a leading * admits every source's users",
        '4: policies[0].bootstrap.federatedUsers[1]: must not start with "system:": system identities are never approved',
        '4: policies[0].bootstrap.federatedUsers[2]: must not be empty',
      ],
    );
  });

  it('a bootstrap group that some policy issues as an organization is refused', () => {
    assert.deepEqual(
      problems(`
policies:
  - name: a
    bootstrap: { groups: ['system:bootstrappers:kcr:a', team-b] }
    identity: { commonNames: [agent-a] }
  - name: b
    bootstrap: { groups: ['system:bootstrappers:kcr:b'] }
    identity: { commonNames: [agent-b], organizations: ['team-*'] }
`),
      [
        '4: policies[0].bootstrap.groups[1]: is also an organization a policy issues: an issued identity could bootstrap as any identity of this policy',
      ],
    );
  });

  it('renewal is on, off, or trustUsername (the weaker rule for apiservers that record no credential-id)', () => {
    const renewal = (value: string) =>
      parsePolicyFile(`policies:\n  - name: a\n    identity: { commonNames: [x] }\n    renewal: ${value}\n`);
    const trusting = renewal('trustUsername');
    assert.ok(trusting.ok);
    assert.equal(trusting.value.policies[0]?.renewal, 'trustUsername');
    assert.ok(!renewal('sometimes').ok);
  });

  it('no policies key is a problem; an empty list is allowed (the approver then leaves everything pending)', () => {
    assert.deepEqual(problems('denyUnmatched: true\n'), ['1: policies: is required']);
    assert.ok(parsePolicyFile('policies: []\n').ok);
  });
});

describe('name patterns', () => {
  const cases: [string, string, string, boolean][] = [
    ['an exact name matches itself', 'agent-a', 'agent-a', true],
    ['an exact name does not match a longer one', 'agent-a', 'agent-ab', false],
    ['an exact name is case-sensitive, as Kubernetes is', 'agent-a', 'Agent-a', false],
    ['a trailing star matches any suffix', 'agent-*', 'agent-cluster-b', true],
    ['a trailing star matches the empty suffix', 'agent-*', 'agent-', true],
    ['a star does not make the prefix optional', 'agent-*', 'agen', false],
    ['a leading star matches any prefix', '*-agent', 'cluster-a-agent', true],
    ['stars in the middle backtrack correctly', 'a*b*c', 'axxbyybzc', true],
    ['stars in the middle still need every literal', 'a*b*c', 'axxbyyz', false],
    ['a lone star matches everything', '*', 'anything at all', true],
    ['regular-expression characters are literal', 'agent.a', 'agent-a', false],
    ['a question mark is literal', 'agent?', 'agent1', false],
  ];
  for (const [name, pattern, value, expected] of cases) {
    it(name, () => {
      assert.equal(matchesPattern(pattern, value), expected);
    });
  }

  it('a hostile value against many stars takes bounded time', () => {
    // Each extra star multiplies the work of a naive backtracking matcher; this one stays linear per star.
    assert.equal(matchesPattern('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000)), false);
  });

  it('untrusted names are quoted and bounded', () => {
    assert.equal(quote('a\nb'), '"a\\nb"');
    assert.equal(quote('x'.repeat(100)), `"${'x'.repeat(80)}…"`);
  });
});
