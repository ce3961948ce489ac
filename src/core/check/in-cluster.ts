// The decisions of `check --config` (a sidecar's own view of each of its targets, from its pod or the chart's
// `helm test` pod), of `check --approver-policy` (the approver chart's `helm test`) and of the CSR history both
// the operator's check and the approver's read: from what the I/O shell observed, one result per check. Pure.
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

/** One of the decisions found on a CSR of the source: who approved or denied it, in its condition's words. */
export interface CsrDecision {
  readonly csr: string;
  readonly type: 'Approved' | 'Denied';
  readonly reason: string;
  readonly message: string;
}

/** The condition reasons our approver and our check write; any other decided the CSR. */
export const OUR_REASONS: readonly string[] = ['PolicyApproved', 'PolicyDenied', 'KubeconfigRotatorCheck'];

/** CSRs of this source (or of every source, `scope`) decided by someone other than our approver. */
export function otherApproversCheck(
  scope: string,
  seen:
    | { readonly result: 'listed'; readonly csrs: number; readonly decisions: readonly CsrDecision[] }
    | { readonly result: 'unreadable'; readonly message: string },
  where: string,
): CheckResult {
  const base = {
    id: 'certificate.other-approvers',
    group: 'certificate target',
    title: `no other approver decides the CSRs of ${scope}`,
  } as const;
  if (seen.result === 'unreadable')
    return problem(
      'fail',
      base,
      `could not list CSRs: ${seen.message}`,
      'run the check with a target user that may list certificatesigningrequests',
    );
  const others = seen.decisions.filter((decision) => !OUR_REASONS.includes(decision.reason));
  if (others.length === 0)
    return pass(
      base.id,
      base.group,
      base.title,
      `${String(seen.csrs)} CSR(s) of ${scope} in the target, every decision our approver's (${where})`,
    );
  const shown = others
    .slice(0, 3)
    .map(
      (decision) =>
        `${decision.csr} ${decision.type} with reason ${JSON.stringify(decision.reason)}${decision.message === '' ? '' : ` (${decision.message.slice(0, 200)})`}`,
    );
  return problem(
    'fail',
    base,
    `${String(others.length)} CSR(s) of ${scope} decided by another approver: ${shown.join('; ')}`,
    'remove or scope the other approver (a second kubeconfig-rotator approver release, an auto-approver, a person running kubectl certificate approve): only one approver may serve these requesters, or the policy is bypassed',
  );
}

/** The approver's mounted policy file, read with its own schema (the approver chart's helm test). */
export function policyFileCheck(
  path: string,
  seen:
    | { readonly ok: true; readonly policies: readonly string[] }
    | { readonly ok: false; readonly problems: readonly string[] },
): CheckResult {
  const base = { id: 'approver.policy-file', group: 'approver', title: 'the installed policy is valid' } as const;
  if (seen.ok)
    return seen.policies.length > 0
      ? pass(base.id, base.group, base.title, `${path}: policies ${seen.policies.join(', ')}`)
      : problem(
          'warn',
          base,
          `${path} holds no policy: every CSR stays pending`,
          'add a source to the approver chart values (sources[]) and helm upgrade',
        );
  return problem(
    'fail',
    base,
    `${path} is invalid: ${seen.problems.slice(0, 3).join('; ')}`,
    'correct the approver chart values (the approver refuses this file too) and helm upgrade',
  );
}

/** What the check reads of a CSR: its requester and its conditions. */
export interface CsrSeen {
  readonly name: string;
  readonly username: string;
  readonly groups: readonly string[];
  readonly conditions: readonly {
    readonly type: string;
    readonly status: string;
    readonly reason?: string | undefined;
    readonly message?: string | undefined;
  }[];
}

/** The CSRs requested by these users or members of these groups, and the Approved/Denied decisions on them. */
export function decisionsOn(
  csrs: readonly CsrSeen[],
  requesters: { readonly users: readonly string[]; readonly groups: readonly string[] },
): { readonly csrs: number; readonly decisions: CsrDecision[] } {
  const ours = csrs.filter(
    (csr) => requesters.users.includes(csr.username) || csr.groups.some((group) => requesters.groups.includes(group)),
  );
  const decisions = ours.flatMap((csr) =>
    csr.conditions
      .filter(
        (condition) => (condition.type === 'Approved' || condition.type === 'Denied') && condition.status === 'True',
      )
      .map((condition) => ({
        csr: csr.name,
        type: condition.type as 'Approved' | 'Denied',
        reason: condition.reason ?? '',
        message: condition.message ?? '',
      })),
  );
  return { csrs: ours.length, decisions };
}

/** A CSR as the API returns it, the fields the check reads. */
export interface ApiCsr {
  readonly metadata?: { readonly name?: string };
  readonly spec?: { readonly username?: string; readonly groups?: string[] };
  readonly status?: {
    readonly conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export const csrSeen = (csr: ApiCsr): CsrSeen => ({
  name: csr.metadata?.name ?? '',
  username: csr.spec?.username ?? '',
  groups: csr.spec?.groups ?? [],
  conditions: csr.status?.conditions ?? [],
});

export type AlertsSeen =
  | { readonly result: 'noCrd' }
  | { readonly result: 'crd'; readonly rules: readonly string[] }
  | { readonly result: 'unreadable'; readonly message: string };

/**
 * The charts' PrometheusRule belongs only where the Prometheus Operator's CRDs exist: without them there is
 * nothing to install (and helm install with prometheusRule.enabled fails at once); with them, a release without
 * its rule fires no alert when rotations fail.
 */
export function alertsCheck(role: 'target' | 'source', seen: AlertsSeen): CheckResult {
  const chart = role === 'target' ? 'the approver chart' : 'the sidecar chart';
  const base = {
    id: `${role}.alerts`,
    group: role,
    title: `alerts for ${chart} where the Prometheus Operator runs`,
  } as const;
  switch (seen.result) {
    case 'noCrd':
      return pass(
        base.id,
        base.group,
        base.title,
        `no PrometheusRule CRD (monitoring.coreos.com) in the ${role}: keep prometheusRule.enabled and serviceMonitor.enabled off there; the metrics are still served`,
      );
    case 'crd':
      return seen.rules.length > 0
        ? pass(base.id, base.group, base.title, `PrometheusRule ${seen.rules.join(', ')}`)
        : problem(
            'warn',
            base,
            `the Prometheus Operator's CRDs are installed in the ${role} but no kubeconfig-rotator PrometheusRule exists: no alert fires when rotations fail`,
            `helm upgrade ${chart === 'the approver chart' ? 'kubeconfig-rotator-approver' : 'kubeconfig-rotator-sidecar'} with prometheusRule.enabled=true and serviceMonitor.enabled=true`,
          );
    case 'unreadable':
      return problem(
        'fail',
        base,
        `could not read the PrometheusRule CRD or PrometheusRules: ${seen.message}`,
        `run the check with a ${role} kubeconfig that may read customresourcedefinitions and prometheusrules`,
      );
  }
}

/** A LabelSelector (matchLabels, matchExpressions) as the label-selector string a list takes. */
export function labelSelectorString(selector: {
  readonly matchLabels?: Readonly<Record<string, string>> | undefined;
  readonly matchExpressions?:
    | readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] | undefined }[]
    | undefined;
}): string {
  const terms = Object.entries(selector.matchLabels ?? {}).map(([key, value]) => `${key}=${value}`);
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    if (operator === 'In') terms.push(`${key} in (${values.join(',')})`);
    else if (operator === 'NotIn') terms.push(`${key} notin (${values.join(',')})`);
    else if (operator === 'Exists') terms.push(key);
    else if (operator === 'DoesNotExist') terms.push(`!${key}`);
  }
  return terms.join(',');
}

export type WebhookTrial =
  /** No namespace matches the webhook's namespaceSelector: nothing to ask it with. */
  | { readonly result: 'noNamespace'; readonly selector: string }
  /** The dry-run pod came back with the sidecar added. */
  | { readonly result: 'injected'; readonly namespace: string }
  /** The webhook answered by refusing the check's pod (an unknown target, say): it is reachable and trusted. */
  | { readonly result: 'denied'; readonly namespace: string; readonly message: string }
  /** The pod came back unchanged: the call failed and failurePolicy Ignore hid it, or the webhook skipped it. */
  | { readonly result: 'unchanged'; readonly namespace: string }
  /** The apiserver could not call the webhook: no endpoints, refused, a certificate the caBundle does not verify. */
  | { readonly result: 'failed'; readonly namespace: string; readonly message: string }
  | { readonly result: 'error'; readonly message: string };

/** The injector's webhook, asked the way the apiserver asks it: a dry-run pod asking for injection. */
export function injectorWebhookCheck(name: string, trial: WebhookTrial): CheckResult {
  const base = {
    id: 'source.injector-webhook',
    group: 'source',
    title: `the injector's webhook ${name} answers the apiserver over TLS it trusts`,
  } as const;
  const pods = `kubectl get pods,endpointslices -A -l app.kubernetes.io/component=injector; the Service ${name}'s endpoints; its serving certificate (the Secret the chart or cert-manager writes) signed by the caBundle of MutatingWebhookConfiguration ${name}, for the Service's DNS name, unexpired`;
  switch (trial.result) {
    case 'noNamespace':
      return problem(
        'warn',
        base,
        `no namespace matches its namespaceSelector (${trial.selector}), so it was not asked`,
        "label the agents' namespace as the chart says (kubeconfig-rotator.io/injection=enabled by default) and run the check again",
      );
    case 'injected':
      return pass(
        base.id,
        base.group,
        base.title,
        `a dry-run pod in ${trial.namespace} came back with the sidecar added`,
      );
    case 'denied':
      return pass(
        base.id,
        base.group,
        base.title,
        `it answered a dry-run pod in ${trial.namespace} (it refused it: ${trial.message.slice(0, 200)})`,
      );
    case 'unchanged':
      return problem(
        'warn',
        base,
        `a dry-run pod in ${trial.namespace} asking for injection came back without the sidecar: with failurePolicy Ignore a failed call looks like this`,
        `set injector.failurePolicy: Fail to see the apiserver's error, or check: ${pods}`,
      );
    case 'failed':
      return problem(
        'fail',
        base,
        `the apiserver could not call it for a dry-run pod in ${trial.namespace}: ${trial.message.slice(0, 400)}`,
        `check ${pods}`,
      );
    case 'error':
      return problem(
        'fail',
        base,
        `the check could not ask it: ${trial.message}`,
        'run the check with a source kubeconfig that may list MutatingWebhookConfigurations and namespaces and create pods (dry run)',
      );
  }
}
