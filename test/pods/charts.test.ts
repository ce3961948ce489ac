// Both charts installed with helm as the README says, with the image built here (imported into the node under
// the charts' default reference, so no registry and no image values are needed), running as real pods under
// the kubelet: the approver (2 replicas, one leader, a PDB) on the target and the sidecar in standalone mode
// with a Secret sink on the source. The pods cluster is both (bootstrap writes its node address, which pods
// reach). The published kubeconfig is used against the target after each of several rotations.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoordinationV1Api, CoreV1Api, PolicyV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { eventually } from '../support/eventually.ts';
import { uniqueName } from '../support/kube.ts';
import { nodeCluster } from '../support/node-cluster.ts';
import { bootstrapEast, eastTarget, installApprover, readPublished } from '../support/pods-charts.ts';
import { scratchDir } from '../support/sidecar.ts';

const cluster = nodeCluster();
const admin = cluster.admin();
const core = admin.makeApiClient(CoreV1Api);
const scratch = scratchDir('pods-charts');
const sourceName = uniqueName('src');
const source = { name: sourceName, identity: `kcr-agent-${sourceName}`, organization: 'kcr-agents' };
const namespaces = { target: uniqueName('kcr-target'), source: uniqueName('kcr-source') };
const release = { approver: 'approver', sidecar: 'sidecar' };
const approverName = `${release.approver}-kubeconfig-rotator-approver`;
const sidecarName = `${release.sidecar}-kubeconfig-rotator-sidecar`;

before(async () => {
  await installApprover(cluster, scratch.path, release.approver, namespaces.target, source);
  const sidecarValues = join(scratch.path, 'sidecar.yaml');
  writeFileSync(sidecarValues, stringify({ targets: [eastTarget(source, { secret: { name: 'east-kubeconfig' } })] }));
  await cluster.helm(
    ...['install', release.sidecar, join(REPO_ROOT, 'charts', 'kubeconfig-rotator-sidecar')],
    ...['--namespace', namespaces.source, '--create-namespace', '-f', sidecarValues],
  );
  await bootstrapEast(cluster, source.name, namespaces.source);
});

after(async () => {
  await cluster.helm('uninstall', release.sidecar, '--namespace', namespaces.source).catch(() => undefined);
  await cluster.helm('uninstall', release.approver, '--namespace', namespaces.target).catch(() => undefined);
  for (const name of Object.values(namespaces)) await core.deleteNamespace({ name }).catch(() => undefined);
  scratch.dispose();
});

describe('the charts on real pods', () => {
  it('approver: 2 replicas Ready, exactly one holds the Lease, a PDB keeps one', async () => {
    await cluster.kubectl('rollout', 'status', `deployment/${approverName}`, '-n', namespaces.target, '--timeout=180s');
    // rollout status may return with one replica still starting (maxUnavailable): wait for both.
    const apps = admin.makeApiClient(AppsV1Api);
    await eventually(
      async () => {
        const { status } = await apps.readNamespacedDeployment({ namespace: namespaces.target, name: approverName });
        assert.equal(status?.readyReplicas, 2, 'Ready replicas');
      },
      { timeoutMs: 60_000, intervalMs: 500, description: 'both approver replicas Ready' },
    );
    const pods = await core.listNamespacedPod({
      namespace: namespaces.target,
      labelSelector: 'app.kubernetes.io/name=kubeconfig-rotator-approver',
    });
    const running = pods.items.filter((pod) => pod.status?.phase === 'Running').map((pod) => pod.metadata?.name);
    assert.equal(running.length, 2, `approver pods: ${running.join(' ')}`);
    const lease = await admin
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ namespace: namespaces.target, name: approverName });
    // The holder is a replica's pod name and a per-process suffix.
    const holder = lease.spec?.holderIdentity ?? '';
    assert.equal(running.filter((pod) => holder.startsWith(`${String(pod)}_`)).length, 1, `lease holder ${holder}`);
    // The disruption controller counts both replicas healthy: one may be evicted, not two.
    const pdb = await eventually(
      async () => {
        const read = await admin
          .makeApiClient(PolicyV1Api)
          .readNamespacedPodDisruptionBudget({ namespace: namespaces.target, name: approverName });
        assert.equal(read.status?.currentHealthy, 2, 'healthy replicas');
        return read;
      },
      { timeoutMs: 30_000, intervalMs: 500, description: 'the PodDisruptionBudget counting both replicas' },
    );
    assert.equal(pdb.spec?.minAvailable, 1);
    assert.equal(pdb.status?.disruptionsAllowed, 1);
  });

  it('approver with a broken policy: its pods are not Ready, exit 2, and their log says where the policy is wrong', async () => {
    const namespace = uniqueName('kcr-broken');
    const name = 'broken-kubeconfig-rotator-approver';
    try {
      await installApprover(cluster, scratch.path, 'broken', namespace, source);
      await cluster.kubectl('rollout', 'status', `deployment/${name}`, '-n', namespace, '--timeout=180s');
      // A hand edit that leaves a policy with a name only; fresh pods then start on it.
      await core.patchNamespacedConfigMap({
        namespace,
        name: `${name}-policy`,
        body: [{ op: 'replace', path: '/data/policy.yaml', value: `policies:\n  - name: ${source.name}\n` }],
      });
      await cluster.kubectl(
        'delete',
        'pods',
        '-n',
        namespace,
        '-l',
        'app.kubernetes.io/name=kubeconfig-rotator-approver',
      );
      const { crashed, log } = await eventually(
        async () => {
          const pods = await core.listNamespacedPod({
            namespace,
            labelSelector: 'app.kubernetes.io/name=kubeconfig-rotator-approver',
          });
          const exited = pods.items.find((pod) => {
            const container = pod.status?.containerStatuses?.[0];
            return (container?.lastState?.terminated ?? container?.state?.terminated)?.exitCode === 2;
          });
          // The log of the run that exited: the previous one once the kubelet restarted the container.
          const podName = exited?.metadata?.name ?? '';
          const logs =
            exited === undefined
              ? []
              : await Promise.all(
                  [false, true].map((previous) =>
                    core.readNamespacedPodLog({ namespace, name: podName, previous }).catch(() => ''),
                  ),
                );
          const found = logs.find((text) => text.includes('invalid policy'));
          return exited !== undefined && found !== undefined ? { crashed: exited, log: found } : false;
        },
        { timeoutMs: 120_000, intervalMs: 1_000, description: 'an approver pod exiting 2 on the broken policy' },
      );
      assert.equal(crashed.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
      // Where: the file, line and column of each problem.
      assert.match(log, /\/etc\/kubeconfig-rotator\/policy\.yaml:2:\d+: /);
    } finally {
      await cluster.helm('uninstall', 'broken', '--namespace', namespace).catch(() => undefined);
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  });

  it('sidecar (standalone) before bootstrap: not Ready, and a Warning Event on its pod says the bootstrap kubeconfig is missing', async () => {
    const namespace = uniqueName('kcr-lonely');
    const values = join(scratch.path, 'lonely.yaml');
    writeFileSync(values, stringify({ targets: [eastTarget(source, { secret: { name: 'east-kubeconfig' } })] }));
    try {
      await cluster.helm(
        ...['install', 'lonely', join(REPO_ROOT, 'charts', 'kubeconfig-rotator-sidecar')],
        ...['--namespace', namespace, '--create-namespace', '-f', values],
      );
      const warning = await eventually(
        async () => {
          const events = await core.listNamespacedEvent({ namespace });
          const found = events.items.find(
            (event) => event.reason === 'RotationFailed' && event.involvedObject.kind === 'Pod',
          );
          if (found === undefined) throw new Error(`Events: ${events.items.map((e) => e.reason).join(' ')}`);
          return found;
        },
        { timeoutMs: 120_000, intervalMs: 1_000, description: 'a RotationFailed Event on the pod' },
      );
      assert.equal(warning.type, 'Warning');
      assert.match(warning.message ?? '', /east: .*bootstrap kubeconfig .* is missing/);
      const pod = await core.readNamespacedPod({ namespace, name: warning.involvedObject.name ?? '' });
      assert.equal(pod.status?.phase, 'Running');
      assert.equal(pod.status.conditions?.find((c) => c.type === 'Ready')?.status, 'False');
    } finally {
      await cluster.helm('uninstall', 'lonely', '--namespace', namespace).catch(() => undefined);
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  });

  it('sidecar (standalone): the Secret it publishes works against the target, across 3 rotations', async () => {
    await cluster.kubectl('rollout', 'status', `deployment/${sidecarName}`, '-n', namespaces.source, '--timeout=180s');
    const serials: string[] = [];
    // Each new certificate is checked as it appears; a check that fails ends the wait and fails the test.
    let failure: unknown;
    await eventually(
      async () => {
        const published = await readPublished(core, namespaces.source, 'east-kubeconfig');
        if (published === undefined) return false;
        const { kubeConfig, data } = published;
        const certificate = new X509Certificate(Buffer.from(data['tls.crt'] ?? '', 'base64'));
        if (serials.includes(certificate.serialNumber)) return false;
        serials.push(certificate.serialNumber);
        try {
          assert.match(certificate.subject, new RegExp(`CN=${source.identity}`));
          // The identity's view role on the target, granted by the approver's policy for this source.
          const seen = await kubeConfig
            .makeApiClient(CoreV1Api)
            .listNamespacedPod({ namespace: namespaces.target, limit: 1 });
          assert.ok(Array.isArray(seen.items));
        } catch (error) {
          failure = error;
          return true;
        }
        return serials.length >= 4;
      },
      { timeoutMs: 180_000, intervalMs: 500, description: '3 rotations (4 certificates) published' },
    );
    if (failure !== undefined) throw new Error('a published certificate failed its check', { cause: failure });
  });
});
