// A token target from a real pod: the sidecar chart in standalone mode with `credential: token`, after
// `bootstrap --credential token`; the Secret it publishes holds a kubeconfig whose token the target
// authenticates as the per-source ServiceAccount, and a renewed token replaces it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { tokenIdentity } from '../../src/core/bootstrap/token-plan.ts';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { eventually } from '../support/eventually.ts';
import { uniqueName } from '../support/kube.ts';
import { nodeCluster } from '../support/node-cluster.ts';
import { bootstrapEast, readPublished } from '../support/pods-charts.ts';
import { scratchDir } from '../support/sidecar.ts';

const cluster = nodeCluster();
const core = cluster.admin().makeApiClient(CoreV1Api);
const scratch = scratchDir('pods-token');
const sourceName = uniqueName('src');
const namespaces = { target: uniqueName('kcr-token-target'), source: uniqueName('kcr-token-source') };
const identity = tokenIdentity(sourceName, namespaces.target);

before(async () => {
  await core.createNamespace({ body: { metadata: { name: namespaces.target } } });
  const values = join(scratch.path, 'token.yaml');
  writeFileSync(
    values,
    stringify({
      targets: [
        {
          name: 'east',
          bootstrapSecret: { name: 'kubeconfig-rotator-bootstrap-east' },
          credential: 'token',
          serviceAccount: { namespace: identity.namespace, name: identity.serviceAccount },
          expirationSeconds: 600,
          rotation: { minRemainingSeconds: 60, forceIntervalSeconds: 5 },
          sinks: { secret: { name: 'east-kubeconfig' } },
        },
      ],
    }),
  );
  await cluster.helm(
    ...['install', 'token', join(REPO_ROOT, 'charts', 'kubeconfig-rotator-sidecar')],
    ...['--namespace', namespaces.source, '--create-namespace', '-f', values],
  );
  await bootstrapEast(cluster, sourceName, namespaces.source, [
    ...['--credential', 'token', '--target-namespace', namespaces.target],
  ]);
});

after(async () => {
  await cluster.helm('uninstall', 'token', '--namespace', namespaces.source).catch(() => undefined);
  for (const name of Object.values(namespaces)) await core.deleteNamespace({ name }).catch(() => undefined);
  scratch.dispose();
});

describe('a token target from a pod', () => {
  it('publishes a kubeconfig whose token the target knows as the per-source ServiceAccount, renewed', async () => {
    await cluster.kubectl(
      'rollout',
      'status',
      'deployment/token-kubeconfig-rotator-sidecar',
      '-n',
      namespaces.source,
      '--timeout=180s',
    );
    const user = `system:serviceaccount:${identity.namespace}:${identity.serviceAccount}`;
    const tokens = new Set<string>();
    // Each new token is checked as it appears; a check that fails ends the wait and fails the test.
    let failure: unknown;
    await eventually(
      async () => {
        const published = await readPublished(core, namespaces.source, 'east-kubeconfig');
        if (published === undefined) return false;
        const token = published.kubeConfig.getCurrentUser()?.token;
        if (tokens.has(token ?? '')) return false;
        try {
          tokens.add(token ?? assert.fail('the published kubeconfig holds no token'));
          const review = await published.kubeConfig
            .makeApiClient(AuthenticationV1Api)
            .createSelfSubjectReview({ body: {} });
          assert.equal(review.status?.userInfo?.username, user);
        } catch (error) {
          failure = error;
          return true;
        }
        return tokens.size >= 2;
      },
      { timeoutMs: 120_000, intervalMs: 500, description: 'two tokens published' },
    );
    if (failure !== undefined) throw new Error('a published token failed its check', { cause: failure });
  });
});
