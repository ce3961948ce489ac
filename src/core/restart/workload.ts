// The restart action: what `kubectl rollout restart` does to a workload, so that a consumer that reads its
// credential once (and can mount no directory) starts again with the new one. The pod template's annotation
// carries the rotation's time; retrying the same rotation sends the same value, which changes nothing more,
// so a workload is rolled once per rotation however many attempts it takes.

export const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export interface Workload {
  readonly kind: WorkloadKind;
  readonly namespace: string;
  readonly name: string;
}

/** The annotation kubectl sets: the Deployment, StatefulSet and DaemonSet controllers roll pods when it changes. */
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

/** A JSON merge patch of the pod template's restartedAt annotation (RFC 3339 in UTC, whole seconds, as kubectl writes it). */
export function restartPatch(rotatedAt: number): {
  spec: { template: { metadata: { annotations: Record<string, string> } } };
} {
  const value = new Date(Math.floor(rotatedAt / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  return { spec: { template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: value } } } } };
}

export const describeWorkload = (workload: Workload): string =>
  `${workload.kind} ${workload.namespace}/${workload.name}`;

export const workloadKey = (workload: {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}): string => `${workload.kind}/${workload.namespace}/${workload.name}`;
