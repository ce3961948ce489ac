// Loading the sidecar's configuration and checking what it points at (bootstrap kubeconfigs, the signer CA),
// so that a bad start fails at once, with every problem named, before anything is written. Here, and only
// here, a federated target's (or federated bootstrap's) source ServiceAccount becomes the pod's own where the
// file names none: the rest of the sidecar always knows it.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type Problem } from '../core/config/validate.ts';
import { readConfigFile } from '../io/config-file.ts';
import {
  sidecarConfigSchema,
  type ParsedTarget,
  type ServiceAccountRef,
  type SidecarConfig,
  type SourceAccount,
  type TargetConfig,
} from '../core/config/sidecar.ts';
import {
  bootstrapNeeds,
  BootstrapKubeconfigError,
  readBootstrapKubeconfig,
  type BootstrapCredential,
} from './bootstrap-credential.ts';

export interface LoadedConfig {
  readonly config: SidecarConfig;
  /** Parsed signer CAs by target name. */
  readonly signerCAs: ReadonlyMap<string, X509Certificate>;
  /** Parsed bootstrap kubeconfigs by target name; undefined where the file does not exist (yet). */
  readonly bootstraps: ReadonlyMap<string, BootstrapCredential | undefined>;
}

/** The pod the sidecar runs in, from the downward API (POD_NAMESPACE, POD_SERVICE_ACCOUNT, POD_NAME, POD_UID). */
export interface PodIdentity {
  readonly namespace?: string | undefined;
  readonly serviceAccount?: string | undefined;
  readonly name?: string | undefined;
  readonly uid?: string | undefined;
}

export const podIdentity = (env: NodeJS.ProcessEnv): PodIdentity => ({
  namespace: env.POD_NAMESPACE,
  serviceAccount: env.POD_SERVICE_ACCOUNT,
  name: env.POD_NAME,
  uid: env.POD_UID,
});

/** A federated target (or bootstrap) that names no ServiceAccount, outside a pod that has one. */
export class UnknownServiceAccountError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = 'UnknownServiceAccountError';
    this.field = field;
  }
}

/**
 * The source ServiceAccount whose tokens the target trusts: the configured one or the pod's own, its tokens
 * bound to this pod when known.
 */
function sourceAccount(
  configured: ServiceAccountRef | undefined,
  pod: PodIdentity,
  field: string,
  what: string,
): SourceAccount {
  const own =
    pod.namespace === undefined || pod.serviceAccount === undefined
      ? undefined
      : { namespace: pod.namespace, name: pod.serviceAccount };
  const serviceAccount = configured ?? own;
  if (serviceAccount === undefined)
    throw new UnknownServiceAccountError(
      field,
      `is required for ${what} when POD_NAMESPACE and POD_SERVICE_ACCOUNT are not set (the pod's own)`,
    );
  const boundTo = pod.name === undefined ? undefined : ({ kind: 'Pod', name: pod.name, uid: pod.uid } as const);
  return { serviceAccount, boundTo };
}

/** The target with its source ServiceAccounts known; throws UnknownServiceAccountError naming the field to set. */
export function resolveTarget(target: ParsedTarget, pod: PodIdentity): TargetConfig {
  if (target.credential === 'federated')
    return { ...target, ...sourceAccount(target.serviceAccount, pod, 'serviceAccount', 'a federated target') };
  if (target.credential === 'token') return target;
  const { bootstrap } = target;
  if (bootstrap?.with !== 'federated') return { ...target, bootstrap };
  return {
    ...target,
    bootstrap: {
      ...bootstrap,
      ...sourceAccount(bootstrap.serviceAccount, pod, 'bootstrap.serviceAccount', 'federated bootstrap'),
    },
  };
}

/** Throws ConfigError listing every problem. */
export function loadSidecarConfig(path: string, pod: PodIdentity): LoadedConfig {
  const parsed = readConfigFile(path, sidecarConfigSchema).value;
  const problems: Problem[] = [];
  const signerCAs = new Map<string, X509Certificate>();
  const bootstraps = new Map<string, BootstrapCredential | undefined>();
  const targets: TargetConfig[] = [];
  parsed.targets.forEach((parsedTarget, index) => {
    let target: TargetConfig;
    try {
      target = resolveTarget(parsedTarget, pod);
    } catch (error) {
      if (!(error instanceof UnknownServiceAccountError)) throw error;
      problems.push({ path: `targets[${String(index)}].${error.field}`, message: error.message });
      return;
    }
    targets.push(target);
    try {
      bootstraps.set(target.name, readBootstrapKubeconfig(target.bootstrapKubeconfig, bootstrapNeeds(target)));
    } catch (error) {
      if (!(error instanceof BootstrapKubeconfigError)) throw error;
      problems.push({ path: `targets[${String(index)}].bootstrapKubeconfig`, message: error.message });
    }
    if (target.credential === 'certificate' && target.signerCA !== undefined) {
      try {
        signerCAs.set(target.name, new X509Certificate(readFileSync(target.signerCA)));
      } catch (error) {
        problems.push({
          path: `targets[${String(index)}].signerCA`,
          message: `${target.signerCA}: not a readable PEM certificate: ${(error as Error).message}`,
        });
      }
    }
  });
  if (problems.length > 0) throw new ConfigError(path, problems);
  return { config: { ...parsed, targets }, signerCAs, bootstraps };
}
