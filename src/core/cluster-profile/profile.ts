// A target's ClusterProfile (SIG-Multicluster Cluster Inventory API, multicluster.x-k8s.io/v1alpha1, as
// sigs.k8s.io/cluster-inventory-api v0.1.0 defines it) as the sidecar keeps it: who owns it, the spec it must
// have, and the status computed from what was last observed of the target. Pure: the caller brings the time.
import type { TargetConfig } from '../config/sidecar.ts';
import type { ClusterProfileRef } from '../config/cluster-profile.ts';
import {
  accessProvider,
  PROVIDER_NAME,
  SECRETREADER_PROVIDER_NAME,
  type AccessProvider,
  type ExecExtension,
  type ProviderCluster,
  type SecretreaderExtension,
} from '../exec-credential/extension.ts';
import { kubeconfigKey } from '../secret-format/formats.ts';

export const API_GROUP = 'multicluster.x-k8s.io';
export const API_VERSION = `${API_GROUP}/v1alpha1`;
/** spec.clusterManager.name of every ClusterProfile we keep: one that names another manager is not ours. */
export const CLUSTER_MANAGER = 'kubeconfig-rotator';
/** The label the API asks a cluster manager to set to its name (v1alpha1 LabelClusterManagerKey). */
export const CLUSTER_MANAGER_LABEL = 'x-k8s.io/cluster-manager';
/** The condition the API defines (v1alpha1 ClusterConditionControlPlaneHealthy). */
export const CONTROL_PLANE_HEALTHY = 'ControlPlaneHealthy';
/** Ours, as other cluster managers (OCM, Fleet) name it: a credential for the target is published. */
export const JOINED = 'Joined';

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

/** The status as the API serves it; fields we do not write (properties, others' conditions) are kept. */
export interface ClusterProfileStatus {
  readonly conditions?: readonly Condition[];
  readonly version?: { readonly kubernetes?: string };
  readonly accessProviders?: readonly { readonly name: string; readonly cluster?: unknown }[];
  readonly [field: string]: unknown;
}

export interface ClusterProfile {
  readonly apiVersion: string;
  readonly kind: 'ClusterProfile';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly resourceVersion?: string;
    readonly generation?: number;
    readonly labels?: Readonly<Record<string, string>>;
    readonly [field: string]: unknown;
  };
  readonly spec: {
    readonly displayName?: string;
    readonly clusterManager: { readonly name: string };
    readonly [field: string]: unknown;
  };
  readonly status?: ClusterProfileStatus;
}

/** The API's collection path of ClusterProfiles in a namespace, and one's path. */
export const clusterProfilesPath = (namespace: string) =>
  `/apis/${API_VERSION}/namespaces/${encodeURIComponent(namespace)}/clusterprofiles`;
export const clusterProfilePath = (ref: { namespace: string; name: string }) =>
  `${clusterProfilesPath(ref.namespace)}/${encodeURIComponent(ref.name)}`;

/** What the last look at the target's /readyz said; undefined until the first look. */
export type Health =
  | { readonly state: 'ready' }
  /** It answered, but not 200: the body names the failing checks, which only admins may read. */
  | { readonly state: 'not-ready'; readonly code: number }
  /** No answer at all: refused, reset, timed out, or a TLS failure. */
  | { readonly state: 'unreachable'; readonly detail: string }
  /** An answer that says nothing of health: our credential may not ask (401/403). */
  | { readonly state: 'unknown'; readonly detail: string };

/** What the sidecar knows of the target, at the time of the status. */
export interface Observation {
  readonly server: string | undefined;
  readonly health: Health | undefined;
  /** The target's gitVersion from /version; undefined: not known now (the last known one is kept). */
  readonly version: string | undefined;
  /** The target's rotator: whether a valid credential is in every sink, and what it says about it. */
  readonly credential: { readonly published: boolean; readonly issued: boolean; readonly detail: string };
  /** The target's server and CA, without which no access provider can be written. */
  readonly cluster: ProviderCluster | undefined;
  readonly access: Access;
}

/** The exec extensions of our two access providers; undefined where the target's sinks give no such entry. */
export interface Access {
  readonly ours: ExecExtension | undefined;
  readonly secretreader: SecretreaderExtension | undefined;
}

/** A ClusterProfile whose clusterManager is another's: a message saying so, or undefined when it is ours. */
export function notOurs(profile: ClusterProfile): string | undefined {
  const manager = profile.spec.clusterManager.name;
  if (manager === CLUSTER_MANAGER) return undefined;
  return `ClusterProfile ${profile.metadata.namespace}/${profile.metadata.name} belongs to the cluster manager "${manager}", not ${CLUSTER_MANAGER}: it is left untouched; give this target another clusterProfile.name, or remove that ClusterProfile if it is stale`;
}

/** The ClusterProfile to create for a target. */
export function newClusterProfile(ref: ClusterProfileRef): ClusterProfile {
  return {
    apiVersion: API_VERSION,
    kind: 'ClusterProfile',
    metadata: { name: ref.name, namespace: ref.namespace, labels: { [CLUSTER_MANAGER_LABEL]: CLUSTER_MANAGER } },
    spec: { displayName: ref.displayName, clusterManager: { name: CLUSTER_MANAGER } },
  };
}

/** Our ClusterProfile with the configured displayName and the manager label, or undefined when it has them. */
export function specUpdate(profile: ClusterProfile, ref: ClusterProfileRef): ClusterProfile | undefined {
  const labels = profile.metadata.labels ?? {};
  if (profile.spec.displayName === ref.displayName && labels[CLUSTER_MANAGER_LABEL] === CLUSTER_MANAGER)
    return undefined;
  return {
    ...profile,
    metadata: { ...profile.metadata, labels: { ...labels, [CLUSTER_MANAGER_LABEL]: CLUSTER_MANAGER } },
    spec: { ...profile.spec, displayName: ref.displayName },
  };
}

/**
 * Our exec extension: the Secret sink when it holds the credential itself (any format), else the directory sink,
 * which the consumer mounts. The upstream kubeconfig-secretreader's: a Secret sink of format kubeconfig not in
 * reference mode, whose kubeconfig carries the credential inline.
 */
export function accessOf(target: Pick<TargetConfig, 'name' | 'sinks'>): Access {
  const { secret, directory } = target.sinks;
  const selfContained = secret !== undefined && secret.reference === undefined ? secret : undefined;
  const ours: ExecExtension | undefined =
    selfContained !== undefined
      ? { secret: { namespace: selfContained.namespace, name: selfContained.name }, target: target.name }
      : directory !== undefined
        ? { directory: directory.path, target: target.name }
        : undefined;
  const secretreader =
    selfContained?.format === 'kubeconfig'
      ? {
          name: selfContained.name,
          key: kubeconfigKey({ format: 'kubeconfig', targetName: target.name, key: selfContained.key }) ?? 'config',
          namespace: selfContained.namespace,
        }
      : undefined;
  return { ours, secretreader };
}

function controlPlaneCondition(observation: Observation): Omit<Condition, 'lastTransitionTime'> {
  const at = observation.server === undefined ? "the target's API server" : `the API server at ${observation.server}`;
  const { health } = observation;
  const condition = (status: Condition['status'], reason: string, message: string) => ({
    type: CONTROL_PLANE_HEALTHY,
    status,
    reason,
    message,
  });
  if (health === undefined) return condition('Unknown', 'NotCheckedYet', `${at} has not been asked /readyz yet`);
  switch (health.state) {
    case 'ready':
      return condition('True', 'APIServerReady', `${at} answers /readyz: ok`);
    case 'not-ready':
      return condition(
        'False',
        'APIServerNotReady',
        `${at} answers /readyz with HTTP ${String(health.code)}: it is up but some of its readiness checks fail`,
      );
    case 'unreachable':
      return condition('False', 'APIServerUnreachable', `${at} does not answer: ${health.detail}`);
    case 'unknown':
      return condition('Unknown', 'ReadyzNotReadable', `${at} did not say whether it is ready: ${health.detail}`);
  }
}

function joinedCondition(observation: Observation): Omit<Condition, 'lastTransitionTime'> {
  const { published, issued, detail } = observation.credential;
  const condition = (status: Condition['status'], reason: string, message: string) => ({
    type: JOINED,
    status,
    reason,
    message,
  });
  if (published) return condition('True', 'CredentialPublished', `a credential is published: ${detail}`);
  if (!issued)
    return condition('False', 'NoCredentialYet', `no credential has been obtained for the target yet: ${detail}`);
  return condition('False', 'CredentialNotUsable', `the published credential cannot be used now: ${detail}`);
}

/** Keeps lastTransitionTime while the status stays the same (as apimachinery's meta.SetStatusCondition does). */
function setCondition(
  conditions: readonly Condition[],
  next: Omit<Condition, 'lastTransitionTime'>,
  now: number,
  generation: number | undefined,
): Condition[] {
  const previous = conditions.find((condition) => condition.type === next.type);
  const lastTransitionTime =
    previous !== undefined && previous.status === next.status
      ? previous.lastTransitionTime
      : new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  const condition: Condition = {
    ...next,
    lastTransitionTime,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  return previous === undefined
    ? [...conditions, condition]
    : conditions.map((each) => (each.type === next.type ? condition : each));
}

/** Our providers replace entries of their names; any other entry is kept, in its place. */
function mergeProviders(
  existing: ClusterProfileStatus['accessProviders'],
  ours: readonly AccessProvider[],
): NonNullable<ClusterProfileStatus['accessProviders']> {
  const names: readonly string[] = [PROVIDER_NAME, SECRETREADER_PROVIDER_NAME];
  const others = (existing ?? []).filter((entry) => !names.includes(entry.name));
  return [...others, ...ours];
}

/** The status to write: ours from the observation, the rest of the previous one kept. */
export function desiredStatus(profile: ClusterProfile, observation: Observation, now: number): ClusterProfileStatus {
  const previous = profile.status ?? {};
  const generation = profile.metadata.generation;
  let conditions = [...(previous.conditions ?? [])];
  conditions = setCondition(conditions, controlPlaneCondition(observation), now, generation);
  conditions = setCondition(conditions, joinedCondition(observation), now, generation);
  const kubernetes = observation.version ?? previous.version?.kubernetes;
  const { cluster, access } = observation;
  const providers: AccessProvider[] = [];
  if (cluster !== undefined) {
    if (access.ours !== undefined) providers.push(accessProvider(PROVIDER_NAME, cluster, access.ours));
    if (access.secretreader !== undefined)
      providers.push(accessProvider(SECRETREADER_PROVIDER_NAME, cluster, access.secretreader));
  }
  const accessProviders = mergeProviders(previous.accessProviders, providers);
  const next: Record<string, unknown> = { ...previous, conditions };
  if (kubernetes !== undefined) next.version = { ...previous.version, kubernetes };
  if (accessProviders.length > 0) next.accessProviders = accessProviders;
  else delete next.accessProviders;
  return next;
}

/** Whether writing `next` would change what the API holds (key order aside). */
export function statusDiffers(current: ClusterProfileStatus | undefined, next: ClusterProfileStatus): boolean {
  return canonical(current ?? {}) !== canonical(next);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    typeof item === 'object' && item !== null && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))
      : item,
  );
}
