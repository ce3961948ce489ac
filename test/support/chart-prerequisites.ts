// What installing the charts into the test clusters needs first, as a user's cluster would have it: the
// Prometheus Operator's CRDs (stand-ins, test/fixtures/crds) and the namespaces the charts' Roles go to.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiextensionsV1Api, CoreV1Api, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import type { TestCluster } from './clusters.ts';
import { eventually, statusCode } from './kube.ts';

const STAND_IN_LABEL = 'kubeconfig-rotator.test/stand-in';

/**
 * Creates the monitoring.coreos.com stand-in CRDs where missing, or updates an older stand-in (never a real
 * one), and waits until they are served. They are left in place: other test files share them.
 */
export async function ensureMonitoringCrds(clusters: readonly TestCluster[]): Promise<void> {
  const file = join(REPO_ROOT, 'test', 'fixtures', 'crds', 'monitoring.coreos.com.yaml');
  const crds = parseAllDocuments(readFileSync(file, 'utf8')).map(
    (document) => document.toJS() as V1CustomResourceDefinition,
  );
  for (const cluster of clusters) {
    const api = cluster.admin().makeApiClient(ApiextensionsV1Api);
    for (const crd of crds) {
      const name = crd.metadata?.name ?? '';
      await api.createCustomResourceDefinition({ body: crd }).catch(async (error: unknown) => {
        if (statusCode(error) !== 409) throw error;
        const existing = await api.readCustomResourceDefinition({ name });
        if (existing.metadata?.labels?.[STAND_IN_LABEL] !== 'true') return;
        const metadata = { ...crd.metadata, name, resourceVersion: existing.metadata.resourceVersion ?? '' };
        await api.replaceCustomResourceDefinition({ name, body: { ...crd, metadata } });
      });
      await eventually(
        async () => {
          const stored = await api.readCustomResourceDefinition({ name });
          if (
            !stored.status?.conditions?.some(
              (condition) => condition.type === 'Established' && condition.status === 'True',
            )
          )
            throw new Error(`CRD ${name} is not established yet`);
        },
        { timeoutMs: 30_000 },
      );
    }
  }
}

/**
 * Creates the namespaces that do not exist yet (after one still terminating is gone). The consumers' own
 * (admiralty, argocd...) are left in place: several test files use them; callers delete their unique ones.
 */
export async function ensureNamespaces(cluster: TestCluster, names: readonly string[]): Promise<void> {
  const core = cluster.admin().makeApiClient(CoreV1Api);
  for (const name of new Set(names)) {
    await eventually(
      async () => {
        const phase = await core.readNamespace({ name }).then(
          (namespace) => namespace.status?.phase ?? 'Active',
          (error: unknown) => {
            if (statusCode(error) === 404) return 'absent';
            throw error;
          },
        );
        if (phase === 'Terminating') throw new Error(`namespace ${name} is still terminating`);
        if (phase === 'absent')
          await core.createNamespace({ body: { metadata: { name } } }).catch((error: unknown) => {
            if (statusCode(error) !== 409) throw error;
          });
      },
      { timeoutMs: 60_000 },
    );
  }
}
