// `kubeconfig-rotator bootstrap`: with admin access to a target and a source cluster for that moment, make
// the short-lived bootstrap credential a source's sidecar needs for its first certificate. Applies the plan
// with server-side apply (a re-run converges), then removes this source's older tokens. Prints no secret.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CoreV1Api, KubernetesObjectApi, PatchStrategy, VersionApi, type KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { parseDuration } from '../core/bootstrap/duration.ts';
import {
  BOOTSTRAP_SECRET_KEY,
  bootstrapGroup,
  bootstrapPlan,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  redactPlan,
  SOURCE_LABEL,
  type KubeObject,
} from '../core/bootstrap/plan.ts';
import { bootstrapUser, generateBootstrapToken } from '../core/bootstrap/token.ts';
import { dnsLabel } from '../core/config/fields.ts';
import { describeError, httpStatus } from '../io/kube/errors.ts';
import { KubeConfigError, loadKubeConfig } from '../io/kube/load.ts';

export interface BootstrapOptions {
  readonly targetKubeconfig: string | undefined;
  readonly targetContext: string | undefined;
  readonly sourceKubeconfig: string | undefined;
  readonly sourceContext: string | undefined;
  readonly source: string;
  readonly target: string;
  readonly ttl: string;
  readonly namespace: string;
  readonly secretName: string | undefined;
  readonly server: string | undefined;
  readonly dryRun: boolean;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

const FIELD_MANAGER = 'kubeconfig-rotator-bootstrap';
// Long enough to bootstrap; short enough that a leaked token soon stops mattering.
const MAX_TTL_MS = 7 * 86_400_000;

class BootstrapError extends Error {}

export async function runBootstrap(options: BootstrapOptions): Promise<number> {
  const problems: string[] = [];
  // Each names objects and is a label value: at most 63 characters.
  for (const [flag, value] of [
    ['--source-name', options.source],
    ['--target-name', options.target],
    ['--namespace', options.namespace],
  ] as const) {
    if (!dnsLabel.safeParse(value).success)
      problems.push(`${flag} "${value}" must be a DNS label (a-z, 0-9, -; at most 63 characters)`);
  }
  let ttlMs = 0;
  try {
    ttlMs = parseDuration(options.ttl);
    if (ttlMs < 10_000 || ttlMs > MAX_TTL_MS) problems.push(`--ttl ${options.ttl} must be between 10s and 7d`);
  } catch (error) {
    problems.push(`--ttl: ${(error as Error).message}`);
  }
  let target: KubeConfig | undefined;
  let source: KubeConfig | undefined;
  let caPem: string | undefined;
  try {
    target = loadContext(options.targetKubeconfig, options.targetContext, 'target');
    caPem = targetCa(target);
  } catch (error) {
    problems.push((error as Error).message);
  }
  try {
    source = loadContext(options.sourceKubeconfig, options.sourceContext, 'source');
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (problems.length > 0 || target === undefined || source === undefined || caPem === undefined) {
    options.err.write(
      `kubeconfig-rotator bootstrap: ${String(problems.length)} problem${problems.length === 1 ? '' : 's'}\n${problems.map((line) => `  ${line}\n`).join('')}`,
    );
    return 2;
  }

  const cluster = target.getCurrentCluster();
  const server = options.server ?? cluster?.server ?? '';
  const token = generateBootstrapToken((count) => randomBytes(count));
  const expiration = new Date(Date.now() + ttlMs);
  const secretName = options.secretName ?? `kubeconfig-rotator-bootstrap-${options.target}`;
  const plan = bootstrapPlan({
    source: options.source,
    target: options.target,
    token,
    expiration,
    server,
    caPem,
    sourceNamespace: options.namespace,
    secretName,
  });

  if (options.dryRun) {
    const redacted = redactPlan(plan);
    options.out.write(`# target cluster (${cluster?.server ?? '?'})\n`);
    for (const object of redacted.target) options.out.write(`---\n${stringify(object)}`);
    options.out.write(`# source cluster (${source.getCurrentCluster()?.server ?? '?'})\n`);
    for (const object of redacted.source) options.out.write(`---\n${stringify(object)}`);
    return 0;
  }

  try {
    await reachable(target, 'target');
    await reachable(source, 'source');
    for (const object of plan.target) await apply(target, object, 'target');
    for (const object of plan.source) await apply(source, object, 'source');
    const removed = await removeOlderTokens(target, options.source, token.id);
    const write = (line: string) => options.out.write(`${line}\n`);
    write(`target ${server}:`);
    write(
      `  bootstrap token ${token.id} (user ${bootstrapUser(token)}, group ${bootstrapGroup(options.source)}), expires ${expiration.toISOString()}`,
    );
    write(
      `  ClusterRoleBinding kubeconfig-rotator:bootstrap:${options.source} lets that group create/get/list/watch CSRs, nothing else`,
    );
    if (removed.length > 0) write(`  removed older tokens of this source: ${removed.join(', ')}`);
    write(`source ${source.getCurrentCluster()?.server ?? ''}:`);
    write(
      `  Secret ${options.namespace}/${secretName} (key ${BOOTSTRAP_SECRET_KEY}) holds the bootstrap kubeconfig; mount it as the sidecar's bootstrapKubeconfig`,
    );
    write(
      `The approver must have a policy for source "${options.source}" naming group ${bootstrapGroup(options.source)}.`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof BootstrapError)) throw error;
    options.err.write(`kubeconfig-rotator bootstrap: ${error.message}\n`);
    return 1;
  }
}

function loadContext(path: string | undefined, context: string | undefined, role: 'target' | 'source'): KubeConfig {
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

function targetCa(target: KubeConfig): string {
  const cluster = target.getCurrentCluster();
  if (cluster?.caData !== undefined && cluster.caData !== '')
    return Buffer.from(cluster.caData, 'base64').toString('utf8');
  if (cluster?.caFile !== undefined && cluster.caFile !== '') {
    try {
      return readFileSync(cluster.caFile, 'utf8');
    } catch (error) {
      throw new Error(`the target kubeconfig's CA file ${cluster.caFile} cannot be read: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  throw new Error(
    `the target kubeconfig has no CA for ${cluster?.server ?? 'its cluster'}; the bootstrap kubeconfig must verify the server`,
  );
}

async function reachable(kubeConfig: KubeConfig, role: 'target' | 'source'): Promise<void> {
  try {
    await kubeConfig.makeApiClient(VersionApi).getCode();
  } catch (error) {
    const status = httpStatus(error);
    const hint = status === 401 ? ' (the credential is not accepted)' : '';
    throw new BootstrapError(
      `cannot reach the ${role} cluster at ${kubeConfig.getCurrentCluster()?.server ?? '?'}${hint}: ${describeError(error)}`,
      { cause: error },
    );
  }
}

async function apply(kubeConfig: KubeConfig, object: KubeObject, role: 'target' | 'source'): Promise<void> {
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
