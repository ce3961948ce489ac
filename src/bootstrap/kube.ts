// The cluster calls `bootstrap` and `revoke` share: loading each cluster's admin kubeconfig, checking it
// answers, and applying objects with server-side apply (a re-run converges). Errors say which cluster,
// which object and which user.
import { readFileSync } from 'node:fs';
import { KubernetesObjectApi, PatchStrategy, VersionApi, type KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from '../core/bootstrap/plan.ts';
import { parseKubeVersion, versionProblems, type KubeVersion, type Requirement } from '../core/kube-version.ts';
import { describeError, httpStatus } from '../io/kube/errors.ts';
import { KubeConfigError, loadKubeConfig } from '../io/kube/load-kubeconfig.ts';

const FIELD_MANAGER = 'kubeconfig-rotator-bootstrap';

/** A failure at run time (exit 1), reported as its message alone. */
export class BootstrapError extends Error {}

/**
 * Refuses a cluster older than a feature needs, naming the feature (the rule of core/kube-version.ts, as the
 * sidecar and the approver check it at start); an unreadable version passes.
 */
export function requireMinor(version: KubeVersion | undefined, requirement: Requirement, role: ClusterRole): void {
  const [problem] = version === undefined ? [] : versionProblems(version, [requirement]);
  if (problem !== undefined) throw new BootstrapError(`the ${role} cluster is too old: ${problem}`);
}

export type ClusterRole = 'target' | 'source';

/** Every problem with the command line at once (exit 2), one per line. */
export function writeProblems(err: NodeJS.WritableStream, command: string, problems: readonly string[]): void {
  const count = `${String(problems.length)} problem${problems.length === 1 ? '' : 's'}`;
  err.write(`kubeconfig-rotator ${command}: ${count}\n${problems.map((line) => `  ${line}\n`).join('')}`);
}

/** The two clusters an operator's command acts on: each by kubeconfig and context, and by name. */
export interface ClusterPair {
  readonly targetKubeconfig: string | undefined;
  readonly targetContext: string | undefined;
  readonly sourceKubeconfig: string | undefined;
  readonly sourceContext: string | undefined;
  readonly source: string;
  readonly target: string;
}

export function loadContext(path: string | undefined, context: string | undefined, role: ClusterRole): KubeConfig {
  try {
    return loadKubeConfig(path, context);
  } catch (error) {
    if (!(error instanceof KubeConfigError)) throw error;
    // The first line only: a YAML error's excerpt would break the list of problems.
    throw new Error(
      `--${role}-kubeconfig ${path ?? '(default)'}: cannot be loaded: ${error.message.split('\n')[0] ?? ''}`,
      { cause: error },
    );
  }
}

export function clusterCa(kubeConfig: KubeConfig, role: ClusterRole): string {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster?.caData !== undefined && cluster.caData !== '')
    return Buffer.from(cluster.caData, 'base64').toString('utf8');
  if (cluster?.caFile !== undefined && cluster.caFile !== '') {
    try {
      return readFileSync(cluster.caFile, 'utf8');
    } catch (error) {
      throw new Error(
        `the ${role} kubeconfig's CA file ${cluster.caFile} cannot be read: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }
  throw new Error(
    `the ${role} kubeconfig has no CA for ${cluster?.server ?? 'its cluster'}; the bootstrap kubeconfig must verify the server`,
  );
}

/**
 * Checks the cluster answers; returns its release as core/kube-version.ts reads a /version answer (undefined when
 * it cannot: requireMinor lets that pass).
 */
export async function reachable(kubeConfig: KubeConfig, role: ClusterRole): Promise<KubeVersion | undefined> {
  try {
    return parseKubeVersion(await kubeConfig.makeApiClient(VersionApi).getCode());
  } catch (error) {
    const status = httpStatus(error);
    const hint = status === 401 ? ' (the credential is not accepted)' : '';
    throw new BootstrapError(
      `cannot reach the ${role} cluster at ${kubeConfig.getCurrentCluster()?.server ?? '?'}${hint}: ${describeError(error)}`,
      { cause: error },
    );
  }
}

export async function apply(kubeConfig: KubeConfig, object: KubeObject, role: ClusterRole): Promise<void> {
  try {
    await KubernetesObjectApi.makeApiClient(kubeConfig).patch(
      object,
      undefined,
      undefined,
      FIELD_MANAGER,
      true,
      PatchStrategy.ServerSideApply,
    );
  } catch (error) {
    const where = `${object.kind} ${object.metadata.namespace === undefined ? '' : `${object.metadata.namespace}/`}${object.metadata.name}`;
    const who = kubeConfig.getCurrentUser()?.name ?? '?';
    const reason = httpStatus(error) === 403 ? `the ${role} kubeconfig's user "${who}" is not allowed to` : `could not`;
    throw new BootstrapError(`${reason} apply ${where} in the ${role} cluster: ${describeError(error)}`, {
      cause: error,
    });
  }
}
