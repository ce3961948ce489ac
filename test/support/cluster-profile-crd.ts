// The ClusterProfile CRD of the pinned sigs.k8s.io/cluster-inventory-api, installed as the module ships it (no
// edit) into a test cluster, so the apiserver validates every ClusterProfile written there.
import assert from 'node:assert/strict';
import { ApiextensionsV1Api, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { moduleCrd } from '../../scripts/clusterprofile-crd.ts';
import type { TestCluster } from './clusters.ts';
import { eventually, statusCode } from './kube.ts';

export const CLUSTER_PROFILES = {
  group: 'multicluster.x-k8s.io',
  version: 'v1alpha1',
  plural: 'clusterprofiles',
} as const;

/** Creates (or replaces) the CRD and waits until it is served. */
export async function installClusterProfileCrd(cluster: TestCluster): Promise<void> {
  const api = cluster.admin().makeApiClient(ApiextensionsV1Api);
  const crd = parse(moduleCrd()) as V1CustomResourceDefinition;
  const name = crd.metadata?.name ?? assert.fail('CRD without a name');
  try {
    await api.createCustomResourceDefinition({ body: crd });
  } catch (error) {
    if (statusCode(error) !== 409) throw error;
    const existing = await api.readCustomResourceDefinition({ name });
    const resourceVersion = existing.metadata?.resourceVersion ?? assert.fail('no resourceVersion');
    await api.replaceCustomResourceDefinition({
      name,
      body: { ...crd, metadata: { ...crd.metadata, resourceVersion } },
    });
  }
  await eventually(
    async () => {
      const served = await api.readCustomResourceDefinition({ name });
      assert.ok(
        served.status?.conditions?.some((condition) => condition.type === 'Established' && condition.status === 'True'),
      );
    },
    { timeoutMs: 30_000 },
  );
}
