// The injector on real pods: the sidecar chart with injector.enabled (self-managed certificates), a pod
// created in an opted-in namespace with the inject annotation gets the native sidecar; the kubelet starts
// the agent only after the sidecar's startup probe passed, and the agent (test/pods/fixtures/agent's
// program) calls the target with the published credential. The apiserver reaches the webhook at its pods'
// addresses (--enable-aggregator-routing: the node has no kube-proxy).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { eventually } from '../support/kube.ts';
import { nodeCluster, waitForPod } from '../support/node-cluster.ts';
import {
  agentContainer,
  eastTarget,
  injectorNamespaces,
  installApprover,
  installInjector,
  uniqueSource,
} from '../support/pods-charts.ts';
import { scratchDir } from '../support/sidecar.ts';

const cluster = nodeCluster();
const core = cluster.admin().makeApiClient(CoreV1Api);
const scratch = scratchDir('pods-injector');
const source = uniqueSource();
const namespaces = injectorNamespaces();

before(async () => {
  await installApprover(cluster, scratch.path, 'approver', namespaces.target, source);
  await installInjector(cluster, scratch.path, namespaces, source.name, eastTarget(source, { directory: {} }));
});

after(async () => {
  await cluster.helm('uninstall', 'injector', '--namespace', namespaces.injector).catch(() => undefined);
  await cluster.helm('uninstall', 'approver', '--namespace', namespaces.target).catch(() => undefined);
  for (const name of Object.values(namespaces)) await core.deleteNamespace({ name }).catch(() => undefined);
  scratch.dispose();
});

describe('the injector on real pods', () => {
  it('injects the native sidecar; the agent starts after its startup probe and calls the target', async () => {
    const pod: V1Pod = {
      metadata: { name: 'agent', annotations: { 'kubeconfig-rotator.io/inject': 'east' } },
      spec: {
        serviceAccountName: 'agent',
        containers: [agentContainer(namespaces.target)],
      },
    };
    // The webhook may refuse for a moment while the injector's first certificate reaches its configuration.
    const created = await eventually(() => core.createNamespacedPod({ namespace: namespaces.agent, body: pod }), {
      timeoutMs: 60_000,
      intervalMs: 1000,
    });
    const sidecar = created.spec?.initContainers?.find((container) => container.name === 'kubeconfig-rotator');
    assert.ok(sidecar, `injected init containers: ${JSON.stringify(created.spec?.initContainers?.map((c) => c.name))}`);
    assert.equal(sidecar.restartPolicy, 'Always');
    assert.ok(sidecar.startupProbe, 'the injected sidecar has a startup probe');
    const ready = await waitForPod(cluster, namespaces.agent, 'agent', (p) =>
      (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    const sidecarStatus = ready.status?.initContainerStatuses?.find((s) => s.name === 'kubeconfig-rotator');
    const agentStatus = ready.status?.containerStatuses?.find((s) => s.name === 'agent');
    const sidecarStarted = sidecarStatus?.state?.running?.startedAt ?? assert.fail('sidecar not running');
    const agentStarted = agentStatus?.state?.running?.startedAt ?? assert.fail('agent not running');
    assert.ok(sidecarStarted <= agentStarted);
    assert.equal(sidecarStatus?.restartCount, 0);
    assert.equal(agentStatus?.restartCount, 0, 'the agent never ran without a credential');
    let lines: { ok: boolean; serial?: string }[] = [];
    await eventually(
      async () => {
        const log = await core.readNamespacedPodLog({ namespace: namespaces.agent, name: 'agent', container: 'agent' });
        lines = log
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as { ok: boolean; serial?: string });
        return new Set(lines.map((line) => line.serial)).size >= 2;
      },
      { timeoutMs: 60_000, intervalMs: 2_000, description: "the agent's calls with a renewed certificate" },
    );
    assert.deepEqual(
      lines.filter((line) => !line.ok),
      [],
    );
  });
});
