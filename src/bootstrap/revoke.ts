// `kubeconfig-rotator revoke`: invalidate every token of one source at once by deleting the lease Secret
// they are all bound to (the apiserver refuses a bound token whose object is gone). Only our own lease
// Secret is deleted; the ServiceAccount, its RBAC and the guardrail stay, so a new bootstrap restores it.
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { MANAGED_BY, MANAGED_BY_LABEL, SOURCE_LABEL } from '../core/bootstrap/plan.ts';
import { DEFAULT_TOKEN_NAMESPACE, LEASE_SECRET_TYPE, tokenIdentity } from '../core/bootstrap/token-plan.ts';
import { dnsLabel } from '../core/config/fields.ts';
import { describeError, httpStatus } from '../io/kube/errors.ts';
import { BootstrapError, loadContext, reachable, writeProblems } from './kube.ts';

export interface RevokeOptions {
  readonly source: string;
  readonly targetKubeconfig: string | undefined;
  readonly targetContext: string | undefined;
  readonly targetNamespace?: string | undefined;
  readonly dryRun: boolean;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

/** Why a Secret of that name is not a lease we may delete, or undefined when it is. */
export function notOurLease(secret: V1Secret, source: string): string | undefined {
  if (secret.type !== LEASE_SECRET_TYPE) return `its type is ${secret.type ?? '(none)'}, not ${LEASE_SECRET_TYPE}`;
  const labels = secret.metadata?.labels ?? {};
  if (labels[MANAGED_BY_LABEL] !== MANAGED_BY[MANAGED_BY_LABEL])
    return `it is not managed by kubeconfig-rotator (label ${MANAGED_BY_LABEL})`;
  if (labels[SOURCE_LABEL] !== source) return `it belongs to source "${labels[SOURCE_LABEL] ?? ''}"`;
  return undefined;
}

export async function runRevoke(options: RevokeOptions): Promise<number> {
  const namespace = options.targetNamespace ?? DEFAULT_TOKEN_NAMESPACE;
  const problems: string[] = [];
  for (const [flag, value] of [
    ['--source-name', options.source],
    ['--target-namespace', namespace],
  ] as const)
    if (!dnsLabel.safeParse(value).success)
      problems.push(`${flag} "${value}" must be a DNS label (a-z, 0-9, -; at most 63 characters)`);
  let target: KubeConfig | undefined;
  try {
    target = loadContext(options.targetKubeconfig, options.targetContext, 'target');
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (problems.length > 0 || target === undefined) {
    writeProblems(options.err, 'revoke', problems);
    return 2;
  }

  const identity = tokenIdentity(options.source, namespace);
  const lease = `${namespace}/${identity.leaseSecret}`;
  const write = (line: string) => options.out.write(`${line}\n`);
  try {
    await reachable(target, 'target');
    const api = target.makeApiClient(CoreV1Api);
    const secret = await api.readNamespacedSecret({ namespace, name: identity.leaseSecret }).catch((error: unknown) => {
      if (httpStatus(error) === 404) return undefined;
      throw new BootstrapError(`could not read Secret ${lease}: ${describeError(error)}`, { cause: error });
    });
    if (secret === undefined) {
      write(`Secret ${lease} does not exist: the tokens of source ${options.source} are already revoked.`);
    } else {
      const refusal = notOurLease(secret, options.source);
      if (refusal !== undefined)
        throw new BootstrapError(`Secret ${lease} is not this source's token lease: ${refusal}`);
      const uid = secret.metadata?.uid ?? '';
      if (options.dryRun) {
        write(`would delete Secret ${lease} (uid ${uid}), revoking every token of source ${options.source}`);
        return 0;
      }
      // Preconditioned on the uid read: a lease a new bootstrap made meanwhile is not ours to delete.
      await api
        .deleteNamespacedSecret({ namespace, name: identity.leaseSecret, body: { preconditions: { uid } } })
        .catch((error: unknown) => {
          throw new BootstrapError(`could not delete Secret ${lease}: ${describeError(error)}`, { cause: error });
        });
      write(`deleted Secret ${lease} (uid ${uid}): every token of source ${options.source} is refused from now on.`);
    }
    write(
      `The source's sidecars report "re-bootstrap needed" within their revocationCheckSeconds (default 60). To restore access, run:\n` +
        `  kubeconfig-rotator bootstrap --credential token --source-name ${options.source} --target-namespace ${namespace} --target-name NAME ...\n` +
        `and let the new bootstrap Secret reach the sidecar.`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof BootstrapError)) throw error;
    options.err.write(`kubeconfig-rotator revoke: ${error.message}\n`);
    return 1;
  }
}
