// `check --config`'s decisions: a sidecar's own view of each of its targets (from its pod or the chart's
// `helm test` pod): the bootstrap kubeconfig, the target's endpoint, the bootstrap credential, what is published, RBAC.
import { bootstrapRefusal } from './refusal.ts';
import { BOOTSTRAP_TOKEN_AUTH_FIX } from './certificate.ts';
import type { EndpointTrial } from './common.ts';
import { pass, problem, type CheckResult } from './model.ts';

const sidecar = (id: 'bootstrap-kubeconfig' | 'target-endpoint' | 'bootstrap-credential' | 'published' | 'rbac') =>
  ({ id: `sidecar.${id}`, group: 'sidecar' }) as const;

const REBOOTSTRAP =
  'run kubeconfig-rotator bootstrap for this source and target (it writes the Secret the chart mounts), with --namespace of the sidecar';

/** The target's bootstrap kubeconfig, as the sidecar's own loader reads it (the mounted Secret). */
export function bootstrapKubeconfigCheck(
  target: string,
  path: string,
  seen: { readonly result: 'read' } | { readonly result: 'absent'; readonly publishedValid: boolean },
): CheckResult {
  const base = { ...sidecar('bootstrap-kubeconfig'), title: `target ${target}: the bootstrap kubeconfig is mounted` };
  if (seen.result === 'read') return pass(base.id, base.group, base.title, `${path} read with the sidecar's loader`);
  return seen.publishedValid
    ? problem(
        'warn',
        base,
        `${path} does not exist (the bootstrap Secret is missing); the published credential is valid, so the sidecar renews with it, but a restart after it expires has nothing to start from`,
        REBOOTSTRAP,
      )
    : problem(
        'fail',
        base,
        `${path} does not exist: the bootstrap Secret is missing from the sidecar's namespace (the chart mounts it optional) and no valid credential is published`,
        REBOOTSTRAP,
      );
}

/** The target answers over TLS verified with the bootstrap kubeconfig's CA and tls-server-name, from this pod. */
export function targetEndpointCheck(
  target: string,
  endpoint: { readonly server: string; readonly tlsServerName: string | undefined },
  trial: Exclude<EndpointTrial, { result: 'invalid' }>,
): CheckResult {
  const base = { ...sidecar('target-endpoint'), title: `target ${target}: reachable, its certificate verified` };
  const name = endpoint.tlsServerName === undefined ? '' : ` for name ${endpoint.tlsServerName}`;
  switch (trial.result) {
    case 'answered':
      return pass(base.id, base.group, base.title, `${endpoint.server} answered over TLS checked with its CA${name}`);
    case 'tls':
      return problem(
        'fail',
        base,
        `${endpoint.server}'s certificate does not verify with the bootstrap kubeconfig's CA${name}: ${trial.message}`,
        "run bootstrap again with a target kubeconfig whose server, CA and tls-server-name work with kubectl (or --server for an address the target's certificate is valid for)",
      );
    case 'unreachable':
      return problem(
        'fail',
        base,
        `${endpoint.server} cannot be reached from this pod: ${trial.message}`,
        "check the address bootstrap wrote (--server) and the network path from the source's pods to the target (NetworkPolicy, egress, DNS)",
      );
  }
}

export type CredentialTrial =
  | { readonly result: 'reviewed'; readonly username: string }
  | { readonly result: 'refused'; readonly message: string }
  | { readonly result: 'error'; readonly message: string };

/** The bootstrap credential authenticates at the target (a SelfSubjectReview with it). */
export function bootstrapCredentialCheck(
  target: string,
  kind: 'certificate' | 'token',
  trial: CredentialTrial,
  publishedValid: boolean,
): CheckResult {
  const base = { ...sidecar('bootstrap-credential'), title: `target ${target}: the bootstrap credential is accepted` };
  switch (trial.result) {
    case 'reviewed':
      return pass(base.id, base.group, base.title, `authenticated as ${trial.username}`);
    case 'refused':
      // Bootstrap tokens expire (bootstrap --ttl): once a credential is published, renewals use it instead.
      if (publishedValid)
        return pass(
          base.id,
          base.group,
          base.title,
          `no longer accepted (401; bootstrap tokens expire), which is expected once a valid ${kind} is published: the sidecar renews with it`,
        );
      return problem(
        'fail',
        base,
        `the target refuses it (401) and no valid ${kind} is published: ${bootstrapRefusal(kind, false).causes}`,
        kind === 'certificate'
          ? `run kubeconfig-rotator check --source-name ... --target-name ... from your machine: it tells these causes apart. If bootstrap tokens are not accepted: ${BOOTSTRAP_TOKEN_AUTH_FIX}; otherwise run bootstrap again`
          : 'run kubeconfig-rotator bootstrap --credential token for this source again',
      );
    case 'error':
      return problem(
        'fail',
        base,
        `the SelfSubjectReview with the bootstrap credential failed: ${trial.message}`,
        'retry; if it persists, check the target apiserver (SelfSubjectReview needs Kubernetes 1.28)',
      );
  }
}

export type PublishedSeen =
  | { readonly result: 'read'; readonly identity: string; readonly secondsLeft: number }
  /** A directory sink this container does not mount (the helm test pod). */
  | { readonly result: 'notMounted' }
  | { readonly result: 'absent' }
  | { readonly result: 'unreadable'; readonly message: string };

/** The sidecar's latest Warning Event about a target, on its pod: what its last attempt met. */
export interface SidecarWarning {
  readonly reason: string;
  readonly message: string;
}

/**
 * One sink holds a credential valid for longer than the margin the sidecar renews by (minRemainingSeconds).
 * Where it does not, the sidecar's latest Warning Event for the target (when this process may read Events) is
 * the likely cause, quoted.
 */
export function publishedCheck(
  target: string,
  sink: string,
  marginSeconds: number,
  seen: PublishedSeen,
  warning?: SidecarWarning,
): CheckResult {
  const base = { ...sidecar('published'), title: `target ${target}: ${sink} holds a valid credential` };
  const logs =
    warning === undefined
      ? "read the sidecar's log and Events (kubectl describe pod): they say what the last attempt met"
      : `the sidecar's latest Warning Event says why (${warning.reason}: ${warning.message.slice(0, 600)}); its log says more`;
  switch (seen.result) {
    case 'read':
      if (seen.secondsLeft > marginSeconds)
        return pass(
          base.id,
          base.group,
          base.title,
          `${seen.identity}, valid ${String(seen.secondsLeft)} s more (renewed by ${String(marginSeconds)} s before expiry)`,
        );
      return problem(
        'fail',
        base,
        seen.secondsLeft <= 0
          ? `${seen.identity} expired ${String(-seen.secondsLeft)} s ago: consumers of it are refused`
          : `${seen.identity} is valid only ${String(seen.secondsLeft)} s more, less than the ${String(marginSeconds)} s before expiry by which the sidecar renews: renewal is failing`,
        logs,
      );
    case 'notMounted':
      return problem(
        'warn',
        base,
        'not mounted in this container, so not checked',
        "run kubeconfig-rotator check --config in the sidecar's own container (kubectl exec) to check a directory sink",
      );
    case 'absent':
      return problem('fail', base, 'nothing published yet: the sidecar has no credential for this target', logs);
    case 'unreadable':
      return problem('fail', base, `cannot be read: ${seen.message}`, logs);
  }
}

export interface AccessAsked {
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string;
  readonly name?: string;
}

export const describeAccess = (access: AccessAsked): string =>
  `${access.verb} ${access.resource}${access.name === undefined ? '' : `/${access.name}`} in ${access.namespace}`;

/** The sidecar's ServiceAccount may do what its sinks and Events need (SubjectAccessReviews, one per access). */
export function rbacCheck(
  account: string,
  seen: readonly { readonly access: AccessAsked; readonly allowed: boolean | string }[],
): CheckResult {
  const base = { ...sidecar('rbac'), title: `${account} may write its Secrets and Events` };
  if (seen.length === 0)
    return pass(base.id, base.group, base.title, 'nothing to ask: no Secret sink, and no POD_NAMESPACE for Events');
  const denied = seen.filter((entry) => entry.allowed !== true);
  if (denied.length === 0)
    return pass(base.id, base.group, base.title, seen.map((entry) => describeAccess(entry.access)).join(', '));
  return problem(
    'fail',
    base,
    denied
      .map((entry) =>
        typeof entry.allowed === 'string'
          ? `${describeAccess(entry.access)}: not asked (${entry.allowed})`
          : `${describeAccess(entry.access)}: denied`,
      )
      .join('; '),
    "install the sidecar chart with rbac.create: true (it grants exactly these), or grant them to the sidecar's ServiceAccount",
  );
}
