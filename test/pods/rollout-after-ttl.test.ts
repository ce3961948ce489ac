// Issue 24 on real pods: an injected agent Deployment rolled out after the bootstrap token's TTL starts, and
// its agent calls the target, because its sidecar bootstraps with the pod's own ServiceAccount token
// (`bootstrap.with: federated`), not with the bootstrap token (10 s here, expired and refused by then).
//
// The node cluster is both source and target, and a kube-apiserver refuses a jwt authenticator for its own
// ServiceAccount issuer: ValidateAuthenticationConfiguration gets the apiserver's --service-account-issuer
// values as disallowed issuers ("issuer.url: Invalid value: ...: URL must not overlap with disallowed
// issuers", k8s.io/apiserver v0.36.3 pkg/apis/apiserver/validation/validation.go, called from
// k8s.io/kubernetes v1.36.3 pkg/kubeapiserver/options/authentication.go; checked here: a test cluster with
// such a file exits 1 at start), and a token's `iss` must equal the authenticator's URL exactly, so no
// spelling of the URL gets round it. It does not need one: the apiserver's own ServiceAccount authenticator
// accepts the pod's token when its audience is one of the apiserver's (--api-audiences, by default the
// issuer), as system:serviceaccount:<ns>:<name>. So here the sidecar's bootstrap audience is the apiserver's,
// the approver's policy names that user in bootstrap.users, and the CSR requester role is bound to it by hand
// (what `bootstrap --bootstrap-with federated` does for the mapped users of another cluster). What differs
// from two clusters is only which authenticator maps the token: the jwt one is covered by the integration
// tests (federated-mode, outage-recovery).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { eventually, uniqueName } from '../support/kube.ts';
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

const execute = promisify(execFile);
const cluster = nodeCluster();
const core = cluster.admin().makeApiClient(CoreV1Api);
const scratch = scratchDir('pods-rollout-after-ttl');
const source = uniqueSource();
const namespaces = injectorNamespaces();
const agentUser = () => `system:serviceaccount:${namespaces.agent}:agent`;
const requesterBinding = uniqueName('kcr-federated-bootstrap');

before(async () => {
  // The approver: the agent's ServiceAccount is a bootstrap identity of this source.
  await installApprover(cluster, scratch.path, 'approver', namespaces.target, source, { users: [agentUser()] });
  await cluster.kubectl(
    ...[
      'create',
      'clusterrolebinding',
      requesterBinding,
      '--clusterrole',
      'approver-kubeconfig-rotator-approver-csr-requester',
    ],
    ...['--user', agentUser()],
  );
  // The bootstrap Secret gives the sidecar the target's server and CA; its bootstrap token lives 10 s.
  await installInjector(
    cluster,
    scratch.path,
    namespaces,
    source.name,
    {
      ...eastTarget(source, { directory: {} }),
      // The apiserver's own audience (its issuer): its ServiceAccount authenticator maps the pod's token.
      bootstrap: { with: 'federated', audiences: [cluster.state.server] },
    },
    ['--ttl', '10s'],
  );
});

after(async () => {
  await cluster.helm('uninstall', 'injector', '--namespace', namespaces.injector).catch(() => undefined);
  await cluster.helm('uninstall', 'approver', '--namespace', namespaces.target).catch(() => undefined);
  await cluster.kubectl('delete', 'clusterrolebinding', requesterBinding).catch(() => undefined);
  for (const name of Object.values(namespaces)) await core.deleteNamespace({ name }).catch(() => undefined);
  scratch.dispose();
});

/** The agent container's calls (one JSON line each) in `pod`. */
async function agentCalls(pod: string): Promise<{ ok: boolean; serial?: string }[]> {
  const log = await core.readNamespacedPodLog({ namespace: namespaces.agent, name: pod, container: 'agent' });
  return log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { ok: boolean; serial?: string });
}

/** The Deployment's one Ready pod that is not `other`, once its agent has made successful calls and no failed one. */
async function readyAgentPod(other?: string): Promise<string> {
  const name = await eventually(
    async () => {
      const pods = await core.listNamespacedPod({ namespace: namespaces.agent, labelSelector: 'app=agent' });
      const ready = pods.items.find(
        (pod) =>
          pod.metadata?.name !== other &&
          pod.metadata?.deletionTimestamp === undefined &&
          (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready?.metadata?.name ?? false;
    },
    { timeoutMs: 180_000, intervalMs: 500, description: 'a Ready agent pod' },
  );
  const pod = await waitForPod(cluster, namespaces.agent, name, () => true);
  const agent = pod.status?.containerStatuses?.find((s) => s.name === 'agent');
  assert.equal(agent?.restartCount, 0, 'the agent never ran without a credential');
  await eventually(
    async () => {
      const calls = await agentCalls(name);
      assert.ok(calls.filter((call) => call.ok).length >= 3, `${String(calls.length)} calls`);
      assert.deepEqual(
        calls.filter((call) => !call.ok),
        [],
      );
    },
    { timeoutMs: 60_000, intervalMs: 1000, description: `successful calls from ${name}` },
  );
  return name;
}

describe('a rollout after the bootstrap token expired', () => {
  it("starts the injected agent: its sidecar bootstraps with the pod's own ServiceAccount token", async () => {
    // The bootstrap token is refused before the Deployment exists: it lived 10 s.
    const secret = await core.readNamespacedSecret({
      namespace: namespaces.agent,
      name: 'kubeconfig-rotator-bootstrap-east',
    });
    const bootstrapKubeconfig = join(scratch.path, 'bootstrap.kubeconfig');
    writeFileSync(bootstrapKubeconfig, Buffer.from(secret.data?.kubeconfig ?? '', 'base64'), { mode: 0o600 });
    const kubectl = join(cluster.node.binDir, 'kubectl');
    await eventually(
      async () => {
        await assert.rejects(
          execute(kubectl, ['--kubeconfig', bootstrapKubeconfig, 'auth', 'whoami']),
          /Unauthorized|401/,
        );
      },
      { timeoutMs: 60_000, intervalMs: 1000, description: 'the bootstrap token refused' },
    );

    const template: V1Pod = {
      metadata: { labels: { app: 'agent' }, annotations: { 'kubeconfig-rotator.io/inject': 'east' } },
      spec: {
        serviceAccountName: 'agent',
        containers: [agentContainer(namespaces.target)],
      },
    };
    const manifest = join(scratch.path, 'deployment.yaml');
    writeFileSync(
      manifest,
      stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'agent', namespace: namespaces.agent },
        spec: { replicas: 1, selector: { matchLabels: { app: 'agent' } }, template },
      }),
    );
    // The webhook may refuse for a moment while the injector's first certificate reaches its configuration.
    await eventually(() => cluster.kubectl('apply', '-f', manifest), { timeoutMs: 60_000, intervalMs: 1000 });
    const first = await readyAgentPod();
    const firstPod = await core.readNamespacedPod({ namespace: namespaces.agent, name: first });
    assert.ok(
      firstPod.spec?.initContainers?.some((c) => c.name === 'kubeconfig-rotator' && c.restartPolicy === 'Always'),
      'the native sidecar was injected',
    );

    // And again: every later rollout starts the same way, with no bootstrap token at all.
    await cluster.kubectl('rollout', 'restart', 'deployment/agent', '-n', namespaces.agent);
    const second = await readyAgentPod(first);
    assert.notEqual(second, first);
    const sidecarLog = await core.readNamespacedPodLog({
      namespace: namespaces.agent,
      name: second,
      container: 'kubeconfig-rotator',
    });
    const firstRotation = sidecarLog
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg: string; authenticatedWith?: string; subject?: string })
      .find((line) => line.msg === 'certificate rotated');
    assert.equal(firstRotation?.authenticatedWith, 'bootstrap');
    assert.doesNotMatch(sidecarLog, /re-bootstrap needed/);
    // Each pod's first CSR was made as its ServiceAccount (the bootstrap token was refused by then); the
    // sidecar labels its CSRs with its host name, the pod's name.
    for (const pod of [first, second]) {
      const csrs = JSON.parse(
        await cluster.kubectl('get', 'csr', '-l', `kubeconfig-rotator.io/source-host=${pod}`, '-o', 'json'),
      ) as { items: { spec: { username: string } }[] };
      const requesters = csrs.items.map((csr) => csr.spec.username);
      assert.ok(requesters.includes(agentUser()), `${pod}: CSR requesters ${requesters.join(', ')}`);
      assert.ok(
        requesters.every((user) => user === agentUser() || user === source.identity),
        `${pod}: only its ServiceAccount (first certificate) and the identity (renewals): ${requesters.join(', ')}`,
      );
    }
  });
});
