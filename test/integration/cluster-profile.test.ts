// The sidecar as a cluster manager (issue 26 section 1), against real clusters: the ClusterProfile CRD of the pinned
// sigs.k8s.io/cluster-inventory-api installed in the source, so the apiserver validates every ClusterProfile the
// sidecar writes; Joined after publishing, the access providers of the contract, ControlPlaneHealthy following the
// target's apiserver down and up again, and another cluster manager's ClusterProfile left untouched.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, CustomObjectsApi, VersionApi } from '@kubernetes/client-node';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { clustersRoot, ensureControlPlane, REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { startClusters, startComponent, stopCluster, stopComponent } from '../../scripts/testbed/cluster.ts';
import { moduleCrd } from '../../scripts/clusterprofile-crd.ts';
import type { ClusterProfile, Condition } from '../../src/core/cluster-profile/profile.ts';
import { clusterProfileOf } from '../../src/core/config/cluster-profile.ts';
import { sidecarConfigSchema } from '../../src/core/config/sidecar.ts';
import { ensureNamespaces } from '../support/chart-prerequisites.ts';
import { clusterFromState, testCluster, type TestCluster } from '../support/clusters.ts';
import { CLUSTER_PROFILES, installClusterProfileCrd } from '../support/cluster-profile-crd.ts';
import { consistently } from '../support/eventually.ts';
import { eventually, statusCode, uniqueName } from '../support/kube.ts';
import { prepareTarget, rotated, sidecarTestFile, TestApprover, writeSidecarConfig } from '../support/sidecar.ts';

const source = testCluster('source');
const other = testCluster('target');
const { startSidecar, remember, scratch } = sidecarTestFile('cluster-profile');

describe('ClusterProfile', () => {
  let down: TestCluster;
  const downName = uniqueName('cp-target');
  const namespace = uniqueName('fleet');
  const profiles = () => source.admin().makeApiClient(CustomObjectsApi);
  const read = (name: string) =>
    profiles().getNamespacedCustomObject({ ...CLUSTER_PROFILES, namespace, name }) as Promise<ClusterProfile>;
  const conditionOf = (profile: ClusterProfile, type: string): Condition | undefined =>
    profile.status?.conditions?.find((condition) => condition.type === type);

  before(async () => {
    await installClusterProfileCrd(source);
    await source
      .admin()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: namespace } } });
    // A target cluster of its own: its apiserver is stopped below, which must not disturb other tests.
    const [state] = await startClusters([downName], { binDir: await ensureControlPlane(), root: clustersRoot() });
    if (state === undefined) throw new Error('the ClusterProfile test target did not start');
    down = clusterFromState(state);
  });
  after(async () => {
    await stopCluster(clustersRoot(), downName);
    await source.admin().makeApiClient(CoreV1Api).deleteNamespace({ name: namespace });
  });

  it("is created, validated by the pinned CRD, Joined after publishing, healthy following the apiserver; another manager's is untouched", async () => {
    // Another cluster manager's ClusterProfile, which the second target is (wrongly) configured to keep.
    const theirs = (await profiles().createNamespacedCustomObject({
      ...CLUSTER_PROFILES,
      namespace,
      body: {
        apiVersion: 'multicluster.x-k8s.io/v1alpha1',
        kind: 'ClusterProfile',
        metadata: { name: 'taken', labels: { 'x-k8s.io/cluster-manager': 'open-cluster-management' } },
        spec: { displayName: 'theirs', clusterManager: { name: 'open-cluster-management' } },
      },
    })) as ClusterProfile;
    const prepared = await prepareTarget(down);
    const second = await prepareTarget(other);
    const approvers = [new TestApprover(down.admin(), prepared.name), new TestApprover(other.admin(), second.name)];
    const secretName = `${prepared.name}-kubeconfig`;
    const path = writeSidecarConfig([prepared, second], { sourceKubeconfig: source.state.kubeconfig });
    const config = parse(readFileSync(path, 'utf8')) as {
      targets: { sinks: Record<string, unknown>; clusterProfile?: unknown }[];
      clusterProfiles?: unknown;
    };
    const [first, next] = config.targets;
    assert.ok(first !== undefined && next !== undefined);
    first.sinks.secret = { namespace, name: secretName };
    first.clusterProfile = { displayName: 'The test target' };
    next.clusterProfile = { name: 'taken' };
    config.clusterProfiles = { namespace, healthCheckSeconds: 1 };
    writeFileSync(path, stringify(config));
    const sidecar = startSidecar(path);
    try {
      await sidecar.waitForLog(rotated, 60_000);
      const joined = await eventually(
        async () => {
          const profile = await read(prepared.name);
          assert.equal(conditionOf(profile, 'Joined')?.status, 'True', JSON.stringify(profile.status));
          assert.equal(conditionOf(profile, 'ControlPlaneHealthy')?.status, 'True');
          return profile;
        },
        { timeoutMs: 30_000 },
      );
      assert.deepEqual(joined.spec, { displayName: 'The test target', clusterManager: { name: 'kubeconfig-rotator' } });
      assert.equal(joined.metadata.labels?.['x-k8s.io/cluster-manager'], 'kubeconfig-rotator');
      const { gitVersion } = await down.admin().makeApiClient(VersionApi).getCode();
      assert.deepEqual(joined.status?.version, { kubernetes: gitVersion });
      assert.equal(conditionOf(joined, 'Joined')?.reason, 'CredentialPublished');
      assert.equal(conditionOf(joined, 'ControlPlaneHealthy')?.reason, 'APIServerReady');
      const caData = Buffer.from(readFileSync(down.state.caCertFile, 'utf8')).toString('base64');
      assert.deepEqual(joined.status.accessProviders, [
        {
          name: 'kubeconfig-rotator',
          cluster: {
            server: down.state.server,
            'certificate-authority-data': caData,
            extensions: [
              {
                name: 'client.authentication.k8s.io/exec',
                extension: { secret: { namespace, name: secretName }, target: prepared.name },
              },
            ],
          },
        },
        {
          name: 'kubeconfig-secretreader',
          cluster: {
            server: down.state.server,
            'certificate-authority-data': caData,
            extensions: [
              {
                name: 'client.authentication.k8s.io/exec',
                extension: { name: secretName, key: 'config', namespace },
              },
            ],
          },
        },
      ]);
      // The CRD's schema is enforced: a condition reason with spaces is refused, so what was accepted validated.
      await assert.rejects(
        profiles().replaceNamespacedCustomObjectStatus({
          ...CLUSTER_PROFILES,
          namespace,
          name: prepared.name,
          body: {
            ...joined,
            status: {
              ...joined.status,
              conditions: [{ ...conditionOf(joined, 'Joined'), reason: 'not a valid reason' }],
            },
          },
        }),
        (error: unknown) => statusCode(error) === 422,
      );

      // Unchanged status is not written again: the resourceVersion holds through three health checks (1 s each).
      const settled = await read(prepared.name);
      await consistently(
        async () => {
          assert.equal((await read(prepared.name)).metadata.resourceVersion, settled.metadata.resourceVersion);
        },
        { forMs: 3_000, intervalMs: 250, description: 'the ClusterProfile unchanged' },
      );

      const marker = sidecar.lines.length;
      await stopComponent(down.state, 'kube-apiserver');
      const unhealthy = await eventually(
        async () => {
          const profile = await read(prepared.name);
          assert.equal(conditionOf(profile, 'ControlPlaneHealthy')?.status, 'False');
          return profile;
        },
        { timeoutMs: 30_000 },
      );
      const failing = conditionOf(unhealthy, 'ControlPlaneHealthy') ?? assert.fail('no condition');
      assert.equal(failing.reason, 'APIServerUnreachable');
      assert.match(
        failing.message,
        new RegExp(`^the API server at ${down.state.server} does not answer: .*ECONNREFUSED`),
      );
      // Still joined: the published credential is valid, only the apiserver is away.
      assert.equal(conditionOf(unhealthy, 'Joined')?.status, 'True');
      await sidecar.waitForLog((line) => /ControlPlaneHealthy False/.test(line.msg), 10_000, marker);

      down = clusterFromState(await startComponent(down.state, 'kube-apiserver'));
      const healthy = await eventually(
        async () => {
          const profile = await read(prepared.name);
          assert.equal(conditionOf(profile, 'ControlPlaneHealthy')?.status, 'True');
          return profile;
        },
        { timeoutMs: 60_000 },
      );
      assert.equal(conditionOf(healthy, 'ControlPlaneHealthy')?.reason, 'APIServerReady');
      const back = conditionOf(healthy, 'ControlPlaneHealthy') ?? assert.fail('no condition');
      assert.ok(Date.parse(back.lastTransitionTime) >= Date.parse(failing.lastTransitionTime));

      // The other manager's ClusterProfile: never written, refused in the log and in readiness.
      const refusal = await sidecar.waitForLog((line) =>
        /belongs to the cluster manager "open-cluster-management"/.test(line.msg),
      );
      assert.equal(refusal.level, 'error');
      const untouched = await read('taken');
      assert.equal(untouched.metadata.resourceVersion, theirs.metadata.resourceVersion);
      assert.equal(untouched.status, undefined);
      const readiness = await fetch(`http://127.0.0.1:${String(await sidecar.port())}/readyz`);
      assert.equal(readiness.status, 503);
      assert.match(
        await readiness.text(),
        new RegExp(
          `${second.name}.*ClusterProfile ${namespace}/taken belongs to the cluster manager "open-cluster-management"`,
        ),
      );
    } finally {
      remember(prepared);
      remember(second);
      await sidecar.stop();
      await Promise.all(approvers.map((approver) => approver.stop()));
    }
  });
});

describe('the sidecar chart and ClusterProfiles', () => {
  interface Manifest {
    kind: string;
    metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
    spec?: unknown;
    rules?: { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }[];
    data?: Record<string, string>;
  }
  // Sorted as the chart ranges over them: the release's namespace first.
  const release = uniqueName('a-agents');
  const fleet = uniqueName('b-fleet');
  after(async () => {
    const core = source.admin().makeApiClient(CoreV1Api);
    for (const name of [release, fleet]) await core.deleteNamespace({ name }).catch(() => undefined);
  });

  async function render(values: unknown): Promise<Manifest[]> {
    const helm = join(await ensureControlPlane(), 'helm');
    const file = join(scratch.path, `${uniqueName('values')}.yaml`);
    writeFileSync(file, stringify(values));
    const { stdout } = await promisify(execFile)(helm, [
      'template',
      'kcr',
      join(REPO_ROOT, 'charts/kubeconfig-rotator-sidecar'),
      '--namespace',
      release,
      '--values',
      file,
    ]);
    return parseAllDocuments(stdout)
      .map((document) => document.toJSON() as Manifest | null)
      .filter((manifest): manifest is Manifest => manifest !== null);
  }
  const target = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    bootstrapSecret: { name: `bootstrap-${name}` },
    identity: { commonName: `agent-${name}` },
    sinks: { secret: { name: `${name}-kubeconfig` } },
    ...extra,
  });

  it('installs no CRD and grants nothing on ClusterProfiles by default', async () => {
    const manifests = await render({ targets: [target('east')] });
    assert.ok(!manifests.some((manifest) => manifest.kind === 'CustomResourceDefinition'));
    assert.ok(!JSON.stringify(manifests).includes('clusterprofiles'));
  });

  it("installCRD: the pinned module's CRD, kept on uninstall; a Role per namespace by resourceNames, create by namespace", async () => {
    const manifests = await render({
      clusterProfiles: { installCRD: true },
      targets: [
        target('east', { clusterProfile: { namespace: fleet } }),
        target('west', { clusterProfile: { name: 'west-1' } }),
        target('north'),
      ],
    });
    const crd = manifests.find((manifest) => manifest.kind === 'CustomResourceDefinition') ?? assert.fail('no CRD');
    const pinned = parse(moduleCrd()) as Manifest;
    assert.deepEqual(crd.spec, pinned.spec);
    assert.equal(crd.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
    const roles = manifests.filter(
      (manifest) => manifest.kind === 'Role' && manifest.metadata.name.endsWith('-clusterprofiles'),
    );
    assert.deepEqual(
      roles.map((role) => [role.metadata.namespace, role.rules]),
      [
        [release, rulesFor(['west-1'])],
        [fleet, rulesFor(['east'])],
      ],
    );
    // The config the chart renders is valid, and names the same ClusterProfiles the Roles grant.
    const configMap = manifests.find((manifest) => manifest.kind === 'ConfigMap' && manifest.data?.['config.yaml']);
    const config = sidecarConfigSchema.parse(parse(configMap?.data?.['config.yaml'] ?? ''));
    assert.deepEqual(
      config.targets.map((each) => clusterProfileOf(config.clusterProfiles, each)),
      [
        { namespace: fleet, name: 'east', displayName: 'east' },
        { namespace: release, name: 'west-1', displayName: 'west' },
        undefined,
      ],
    );
    // The apiserver takes the CRD, the Roles and their bindings by server-side apply, as Helm 4 applies (the
    // rest of the chart: charts.test.ts).
    await ensureNamespaces(source, [release, fleet]);
    const rendered = join(scratch.path, `${uniqueName('rendered')}.yaml`);
    const ours = manifests.filter(
      (manifest) => manifest.kind === 'CustomResourceDefinition' || manifest.metadata.name.endsWith('-clusterprofiles'),
    );
    assert.equal(ours.length, 5, 'the CRD, two Roles, two RoleBindings');
    writeFileSync(rendered, ours.map((manifest) => stringify(manifest)).join('---\n'));
    const kubectl = join(await ensureControlPlane(), 'kubectl');
    await promisify(execFile)(kubectl, [
      '--kubeconfig',
      source.state.kubeconfig,
      'apply',
      '--server-side',
      '--force-conflicts',
      '--dry-run=server',
      '-f',
      rendered,
    ]);
  });
});

function rulesFor(names: string[]) {
  return [
    {
      apiGroups: ['multicluster.x-k8s.io'],
      resources: ['clusterprofiles', 'clusterprofiles/status'],
      resourceNames: names,
      verbs: ['get', 'update'],
    },
    { apiGroups: ['multicluster.x-k8s.io'], resources: ['clusterprofiles'], verbs: ['create'] },
  ];
}
