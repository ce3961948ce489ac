// The restart action against the real source cluster: a sidecar running as a ServiceAccount with exactly the
// chart's RBAC (patch on the named Deployment) rolls that Deployment once per rotation, as `kubectl rollout
// restart` does, and never for a repair or for a certificate it finds at start; a Deployment it may not patch
// is reported (log, metric, Event) without holding anything up.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, RbacAuthorizationV1Api, type V1Deployment } from '@kubernetes/client-node';
import { RESTARTED_AT_ANNOTATION, restartPatch, type Workload } from '../../src/core/restart/workload.ts';
import { parseMetrics, sampleValue } from '../../scripts/testbed/metrics.ts';
import { writeServiceAccountKubeconfig } from '../../scripts/testbed/service-account.ts';
import { testCluster } from '../support/clusters.ts';
import { eventually, uniqueName } from '../support/kube.ts';
import {
  outputDir,
  prepareTarget,
  rotated,
  sidecarTestFile,
  TestApprover,
  writeSidecarConfig,
  type LogLine,
  type PreparedTarget,
  type SidecarProcess,
} from '../support/sidecar.ts';

const target = testCluster('target');
const source = testCluster('source');
const { startSidecar, remember, scratch } = sidecarTestFile('restart-action');

const ROTATIONS = 4;
const FORCE_INTERVAL_SECONDS = 5;

const restartedAtOf = (deployment: V1Deployment) =>
  deployment.spec?.template.metadata?.annotations?.[RESTARTED_AT_ANNOTATION];

describe('restart action', () => {
  const namespace = uniqueName('kcr-restart');
  const consumer: Workload = { kind: 'Deployment', namespace, name: 'consumer' };
  const unpermitted: Workload = { kind: 'Deployment', namespace, name: 'not-granted' };
  let prepared: PreparedTarget;
  let approver: TestApprover;
  let config: string;
  let initialGeneration = 0;
  const apps = () => source.admin().makeApiClient(AppsV1Api);
  const read = (workload: Workload) => apps().readNamespacedDeployment(workload);
  const restartedFor = (workload: Workload) => (line: LogLine) =>
    line.msg === 'workload restarted' && line.workload === `Deployment ${workload.namespace}/${workload.name}`;
  const env = () => ({ ...process.env, POD_NAME: 'kcr-sidecar-0', POD_NAMESPACE: namespace });

  before(async () => {
    const admin = source.admin();
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    for (const workload of [consumer, unpermitted]) {
      const labels = { app: workload.name };
      await apps().createNamespacedDeployment({
        namespace,
        body: {
          metadata: { name: workload.name },
          spec: {
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: { containers: [{ name: 'consumer', image: 'registry.invalid/consumer:1' }] },
            },
          },
        },
      });
    }
    initialGeneration = (await read(consumer)).metadata?.generation ?? 0;
    // What the sidecar chart grants for `restart: [{ kind: Deployment, name: consumer }]`, plus its Events.
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'sidecar' } } });
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'sidecar' },
        rules: [
          { apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['consumer'], verbs: ['patch'] },
          { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'sidecar' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'sidecar' },
        subjects: [{ kind: 'ServiceAccount', name: 'sidecar', namespace }],
      },
    });
    const sourceKubeconfig = join(scratch.path, `${namespace}.kubeconfig`);
    await writeServiceAccountKubeconfig(source.state, {
      namespace,
      serviceAccount: 'sidecar',
      tokenSeconds: 3600,
      kubeconfig: sourceKubeconfig,
    });
    prepared = await prepareTarget(target);
    approver = new TestApprover(target.admin(), prepared.name);
    config = writeSidecarConfig(prepared, {
      sourceKubeconfig,
      forceIntervalSeconds: FORCE_INTERVAL_SECONDS,
      restart: [consumer, unpermitted],
    });
  });
  after(async () => {
    remember(prepared);
    await approver.stop();
    await source.admin().makeApiClient(CoreV1Api).deleteNamespace({ name: namespace });
  });

  let first: SidecarProcess;

  it(`rolls the Deployment once per rotation over ${String(ROTATIONS)} rotations, and not for a repair`, async () => {
    first = startSidecar(config, { env: env() });
    await first.waitForLog(restartedFor(consumer), 60_000);
    // A repair in between: the published files are rewritten with the same certificate, nothing is rolled.
    rmSync(join(outputDir(prepared), 'kubeconfig'));
    await first.waitForLog((line) => line.msg === 'output was missing or changed; rewrote it', 30_000);
    await eventually(
      async () => {
        const count = first.count(restartedFor(consumer));
        if (count < ROTATIONS) throw new Error(`${String(count)} restarts so far`);
        await Promise.resolve();
      },
      { timeoutMs: ROTATIONS * FORCE_INTERVAL_SECONDS * 1000 + 60_000, intervalMs: 100 },
    );
    // Right after a restart: the next rotation is FORCE_INTERVAL_SECONDS away.
    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${String(await first.port())}/metrics`)).text());
    await first.stop();

    const rotations = first.count(rotated);
    const restarts = first.lines.filter(restartedFor(consumer));
    assert.equal(rotations, ROTATIONS, 'stopped right after the last restart');
    assert.equal(restarts.length, rotations, 'one restart per rotation');
    const values = restarts.map((line) => restartPatch(Date.parse(String(line.rotatedAt))));
    assert.equal(new Set(values.map((value) => JSON.stringify(value))).size, rotations, 'each rotation its own value');

    const deployment = await read(consumer);
    assert.equal(
      (deployment.metadata?.generation ?? 0) - initialGeneration,
      rotations,
      "the pod template changed exactly once per rotation (the Deployment's generation)",
    );
    assert.equal(
      restartedAtOf(deployment),
      values.at(-1)?.spec.template.metadata.annotations[RESTARTED_AT_ANNOTATION],
      "the last rotation's time, as kubectl writes it",
    );
    const labels = { target: prepared.name };
    assert.equal(
      sampleValue(metrics, 'kubeconfig_rotator_restarts_total', { ...labels, result: 'success' }),
      rotations,
    );
    assert.ok(sampleValue(metrics, 'kubeconfig_rotator_restarts_total', { ...labels, result: 'forbidden' }) >= 1);
  });

  it('a Deployment it may not patch is left alone and reported: log, metric, Event', async () => {
    const denied = await read(unpermitted);
    assert.equal(restartedAtOf(denied), undefined);
    assert.equal(denied.metadata?.generation, 1);
    const failure = await first.waitForLog((line) => line.msg === 'workload restart failed; retrying', 0);
    assert.equal(failure.result, 'forbidden');
    assert.equal(failure.workload, `Deployment ${namespace}/not-granted`);
    const events = await eventually(async () => {
      const list = await source.admin().makeApiClient(CoreV1Api).listNamespacedEvent({ namespace });
      const reasons = new Set(list.items.map((event) => event.reason));
      if (!reasons.has('WorkloadRestarted') || !reasons.has('WorkloadRestartFailed'))
        throw new Error(`events so far: ${[...reasons].join(', ')}`);
      return list.items;
    });
    const failed = events.find((event) => event.reason === 'WorkloadRestartFailed') ?? assert.fail('no such Event');
    assert.equal(failed.type, 'Warning');
    assert.match(failed.message ?? '', /restarting Deployment .*\/not-granted: HTTP 403 Forbidden/);
    assert.equal(failed.involvedObject.name, 'kcr-sidecar-0');
  });

  it('a sidecar started again on the published certificate rolls nothing until its next rotation', async () => {
    const before = (await read(consumer)).metadata?.generation ?? 0;
    const second = startSidecar(config, { env: env() });
    await second.waitForLog((line) => line.msg === 'found a valid certificate', 30_000);
    await second.waitForLog((line) => line.msg === 'ready', 30_000);
    assert.equal((await read(consumer)).metadata?.generation, before, 'the certificate found at start is no rotation');
    assert.equal(second.count(restartedFor(consumer)), 0);
    const restart = await second.waitForLog(restartedFor(consumer), FORCE_INTERVAL_SECONDS * 1000 + 60_000);
    await second.stop();
    assert.equal(second.count(rotated), 1);
    const deployment = await read(consumer);
    assert.equal(deployment.metadata?.generation, before + 1);
    assert.equal(
      restartedAtOf(deployment),
      restartPatch(Date.parse(String(restart.rotatedAt))).spec.template.metadata.annotations[RESTARTED_AT_ANNOTATION],
    );
  });
});
