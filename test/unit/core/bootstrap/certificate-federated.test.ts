import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  federatedBootstrapReport,
  federatedBootstrapTargetObjects,
} from '../../../../src/core/bootstrap/certificate-federated.ts';
import { parsePolicyFile } from '../../../../src/core/policy/schema.ts';
import { sidecarConfigSchema } from '../../../../src/core/config/sidecar.ts';
import { parseAndValidate } from '../../../../src/core/config/validate.ts';

const USER = 'source-west:system:serviceaccount:agents:admiralty';

describe('bootstrap --credential certificate --bootstrap-with federated: what it adds to the trust', () => {
  it('binds the shared CSR requester role to the mapped users only, and creates no bootstrap token', () => {
    const objects = federatedBootstrapTargetObjects('west', [USER]);
    assert.deepEqual(
      objects.map((object) => `${object.kind} ${object.metadata.name}`),
      [
        'ClusterRole kubeconfig-rotator:csr-requester',
        'ClusterRoleBinding kubeconfig-rotator:federated-bootstrap:west',
      ],
    );
    assert.deepEqual(objects[0]?.rules, [
      {
        apiGroups: ['certificates.k8s.io'],
        resources: ['certificatesigningrequests'],
        verbs: ['create', 'get', 'list', 'watch'],
      },
    ]);
    const binding = objects[1] ?? assert.fail('no binding');
    assert.deepEqual(binding.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: USER }]);
    assert.equal(binding.metadata.labels?.['kubeconfig-rotator.io/source'], 'west');
  });

  it('prints a policy bootstrap the approver accepts and sidecar fields its config schema accepts', () => {
    const lines = federatedBootstrapReport({
      source: 'west',
      audience: 'kubeconfig-rotator:east',
      users: [USER],
      serviceAccounts: [{ namespace: 'agents', name: 'admiralty' }],
    });
    const text = lines.join('\n');
    assert.match(text, /no bootstrap token was created/);
    const policyStart = lines.findIndex((line) => line.startsWith("The approver's policy"));
    const sidecarStart = lines.findIndex((line) => line.startsWith("The sidecar's target"));
    const block = (from: number, to: number) =>
      lines
        .slice(from + 1, to)
        .map((line) => line.slice(2))
        .join('\n');
    const policy = parse(block(policyStart, sidecarStart)) as { bootstrap: unknown };
    const parsedPolicy = parsePolicyFile(
      JSON.stringify({ policies: [{ name: 'west', ...policy, identity: { commonNames: ['agent-west'] } }] }),
    );
    assert.ok(parsedPolicy.ok, JSON.stringify(parsedPolicy));
    assert.deepEqual(parsedPolicy.value.policies[0]?.bootstrap.federatedUsers, [USER]);
    const sidecar = parse(block(sidecarStart, lines.length)) as { bootstrap: unknown };
    const config = parseAndValidate(
      JSON.stringify({
        targets: [
          {
            name: 'east',
            bootstrapKubeconfig: '/b/kubeconfig',
            identity: { commonName: 'agent-west' },
            ...sidecar,
            sinks: { directory: { path: '/out' } },
          },
        ],
      }),
      sidecarConfigSchema,
    );
    assert.ok(config.ok, JSON.stringify(config));
    assert.deepEqual(config.value.targets[0]?.bootstrap, {
      with: 'federated',
      audiences: ['kubeconfig-rotator:east'],
      serviceAccount: { namespace: 'agents', name: 'admiralty' },
    });
  });

  it('with several ServiceAccounts, the sidecar uses its pod own (no serviceAccount printed)', () => {
    const lines = federatedBootstrapReport({
      source: 'west',
      audience: 'a',
      users: [USER, 'source-west:system:serviceaccount:agents:other'],
      serviceAccounts: [
        { namespace: 'agents', name: 'admiralty' },
        { namespace: 'agents', name: 'other' },
      ],
    });
    assert.doesNotMatch(lines.join('\n'), /serviceAccount:/);
  });
});
