// What `check` observes of each cluster as a whole: its /version with the kubeconfig given (reachable, and the
// release), and the charts' alert rules where the Prometheus Operator runs.
import { ApiextensionsV1Api, CustomObjectsApi, VersionApi, type KubeConfig } from '@kubernetes/client-node';
import { reachableCheck, versionChecks, type AlertsSeen } from '../core/check/cluster.ts';
import type { ClusterRole, CredentialKind } from '../core/check/common.ts';
import type { CheckResult } from '../core/check/model.ts';
import { parseKubeVersion, type KubeVersion } from '../core/kube-version.ts';
import { describeError, httpStatus } from '../io/kube/errors.ts';
import { abortable } from './abortable.ts';
import { bounded, readOptional } from './bounded.ts';

export async function clusterChecks(
  kubeConfig: KubeConfig,
  role: ClusterRole,
  credential: CredentialKind,
): Promise<{ readonly results: CheckResult[]; readonly reachable: boolean }> {
  const server = kubeConfig.getCurrentCluster()?.server ?? '?';
  try {
    const body = await bounded(`the ${role} cluster's /version`, (signal) =>
      kubeConfig.makeApiClient(VersionApi).getCode({}, abortable(signal)),
    );
    const version: KubeVersion | undefined = parseKubeVersion(body);
    return {
      results: [reachableCheck(role, { ok: true, server, version }), ...versionChecks(role, version, credential)],
      reachable: true,
    };
  } catch (error) {
    const seen = { ok: false, server, status: httpStatus(error), message: describeError(error) } as const;
    return { results: [reachableCheck(role, seen)], reachable: false };
  }
}

/** The Prometheus Operator's PrometheusRule CRD, and the charts' rules (labelled part-of kubeconfig-rotator). */
export async function readAlerts(cluster: KubeConfig): Promise<AlertsSeen> {
  try {
    const crd = await readOptional('the PrometheusRule CRD', (signal) =>
      cluster
        .makeApiClient(ApiextensionsV1Api)
        .readCustomResourceDefinition({ name: 'prometheusrules.monitoring.coreos.com' }, abortable(signal)),
    );
    if (crd === undefined) return { result: 'noCrd' };
    const list = (await bounded('listing PrometheusRules', (signal) =>
      cluster.makeApiClient(CustomObjectsApi).listClusterCustomObject(
        {
          group: 'monitoring.coreos.com',
          version: 'v1',
          plural: 'prometheusrules',
          labelSelector: 'app.kubernetes.io/part-of=kubeconfig-rotator',
        },
        abortable(signal),
      ),
    )) as { items?: { metadata?: { namespace?: string; name?: string } }[] };
    const rules = (list.items ?? []).map((rule) => `${rule.metadata?.namespace ?? ''}/${rule.metadata?.name ?? ''}`);
    return { result: 'crd', rules };
  } catch (error) {
    return { result: 'unreadable', message: describeError(error) };
  }
}
