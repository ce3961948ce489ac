// `bootstrap` (--credential certificate, the default): a bootstrap token in the target, in an extra group of
// this source's own that may only request CSRs, used once as the sidecar will use it; then the source's
// bootstrap Secret, and this source's older tokens removed.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import {
  BOOTSTRAP_SECRET_KEY,
  bootstrapGroup,
  bootstrapPlan,
  CSR_REQUESTER_ROLE,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  redactPlan,
  SOURCE_LABEL,
  type KubeObject,
} from '../core/bootstrap/plan.ts';
import { bootstrapTokenString, bootstrapUser, generateBootstrapToken } from '../core/bootstrap/token.ts';
import { bootstrapTokenCheck } from '../core/check/certificate.ts';
import { docsSection } from '../core/check/model.ts';
import { reviewToken } from '../check/bootstrap-token.ts';
import { describeError } from '../io/kube/errors.ts';
import { apply, BootstrapError, reachable } from './kube.ts';
import { printPlan, type Clusters, type ModeRun } from './mode.ts';

export async function bootstrapCertificate(run: ModeRun, clusters: Clusters, ttlMs: number): Promise<number> {
  const { target, source } = clusters;
  const { server, tlsServerName } = run.endpoint;
  const token = generateBootstrapToken((count) => randomBytes(count));
  const expiration = new Date(Date.now() + ttlMs);
  const plan = bootstrapPlan({
    ...run.endpoint,
    source: run.source,
    target: run.target,
    token,
    expiration,
    sourceNamespace: run.namespace,
    secretName: run.secretName,
  });

  if (run.dryRun) {
    printPlan(run.out, redactPlan(plan), clusters, { server, tlsServerName });
    return 0;
  }

  await reachable(target, 'target');
  await reachable(source, 'source');
  for (const object of plan.target) await apply(target, object, 'target');
  const refused = await verifyToken(target, run.source, bootstrapTokenString(token), plan.target);
  if (refused !== undefined) {
    run.err.write(refused);
    return 1;
  }
  for (const object of plan.source) await apply(source, object, 'source');
  const removed = await removeOlderTokens(target, run.source, token.id);
  const write = (line: string) => run.out.write(`${line}\n`);
  write(`target ${server}:`);
  write(
    `  bootstrap token ${token.id} (user ${bootstrapUser(token)}, group ${bootstrapGroup(run.source)}), expires ${expiration.toISOString()}`,
  );
  write(
    `  ClusterRoleBinding kubeconfig-rotator:bootstrap:${run.source} lets that group create/get/list/watch CSRs, nothing else`,
  );
  if (removed.length > 0) write(`  removed older tokens of this source: ${removed.join(', ')}`);
  write(`source ${source.getCurrentCluster()?.server ?? ''}:`);
  write(
    `  Secret ${run.namespace}/${run.secretName} (key ${BOOTSTRAP_SECRET_KEY}) holds the bootstrap kubeconfig; mount it as the sidecar's bootstrapKubeconfig`,
  );
  write(`The approver must have a policy for source "${run.source}" naming group ${bootstrapGroup(run.source)}.`);
  return 0;
}

/**
 * The new token, used once as the sidecar will use it: undefined when the target accepts it in the source's
 * group; otherwise the report (what is wrong, the fix, what was created and how to remove it). The source's
 * Secret is not written then: a sidecar given a token the target refuses would only loop on 401.
 */
async function verifyToken(
  target: KubeConfig,
  source: string,
  token: string,
  created: readonly KubeObject[],
): Promise<string | undefined> {
  const result = bootstrapTokenCheck(source, await reviewToken(target, token, () => Date.now()));
  if (result.status === 'pass') return undefined;
  const removable = created.filter((object) => object.kind !== 'ClusterRole');
  return [
    `kubeconfig-rotator bootstrap: ${result.detail}`,
    `  fix: ${result.fix ?? ''}`,
    `  see: ${docsSection(result.id)}`,
    'created in the target (the source was not changed):',
    ...created.map((object) => `  ${describeObject(object)}`),
    'remove them with the target kubeconfig (the bootstrap token also expires by itself):',
    ...removable.map(
      (object) =>
        `  kubectl delete ${object.kind.toLowerCase()} ${object.metadata.namespace === undefined ? '' : `--namespace ${object.metadata.namespace} `}${object.metadata.name}`,
    ),
    `  (ClusterRole ${CSR_REQUESTER_ROLE} is shared by every source: leave it while others use it)`,
    '',
  ].join('\n');
}

const describeObject = (object: KubeObject) =>
  `${object.kind} ${object.metadata.namespace === undefined ? '' : `${object.metadata.namespace}/`}${object.metadata.name}`;

/** Deletes this source's bootstrap tokens other than the new one; returns their ids. */
async function removeOlderTokens(target: KubeConfig, source: string, keep: string): Promise<string[]> {
  const api = target.makeApiClient(CoreV1Api);
  const labelSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY[MANAGED_BY_LABEL]},${SOURCE_LABEL}=${source}`;
  const removed: string[] = [];
  try {
    const list = await api.listNamespacedSecret({ namespace: 'kube-system', labelSelector });
    for (const secret of list.items) {
      const name = secret.metadata?.name ?? '';
      if (secret.type !== 'bootstrap.kubernetes.io/token' || name === `bootstrap-token-${keep}`) continue;
      await api.deleteNamespacedSecret({ namespace: 'kube-system', name });
      removed.push(name.replace('bootstrap-token-', ''));
    }
  } catch (error) {
    throw new BootstrapError(
      `the new token works, but older tokens of source ${source} could not be removed: ${describeError(error)}`,
      { cause: error },
    );
  }
  return removed;
}
