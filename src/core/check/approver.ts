// `check`'s decisions on a certificate target's approver: its Deployment is ready and a replica holds its Lease,
// and its policy admits the source's bootstrap group (evaluated with the approver's own code for a first
// certificate when the identity is given).
import { bootstrapGroup } from '../bootstrap/plan.ts';
import { parseCertificationRequest } from '../pki/csr-parse.ts';
import { formatFinding } from '../policy/decision.ts';
import type { Evaluation } from '../policy/evaluate.ts';
import type { RequestFacts } from '../policy/request-checks.ts';
import { certificate, unreadableCheck } from './common.ts';
import { pass, problem, type CheckResult } from './model.ts';

export interface ApproverSeen {
  readonly namespace: string;
  readonly name: string;
  /** undefined: no such Deployment. */
  readonly deployment: { readonly replicas: number; readonly ready: number } | undefined;
  /** undefined: no such Lease. renewTime in ms since the epoch; undefined when the Lease has none. */
  readonly lease:
    { readonly holder: string; readonly renewTime: number | undefined; readonly durationSeconds: number } | undefined;
}

/** The fields of the approver's Deployment and Lease the check reads, as the API returns them (undefined: absent). */
export interface ApproverObjects {
  readonly deployment:
    | {
        readonly spec?: { readonly replicas?: number | undefined } | undefined;
        readonly status?: { readonly readyReplicas?: number | undefined } | undefined;
      }
    | undefined;
  readonly lease:
    | {
        readonly spec?:
          | {
              readonly holderIdentity?: string | undefined;
              readonly renewTime?: string | Date | undefined;
              readonly leaseDurationSeconds?: number | undefined;
            }
          | undefined;
      }
    | undefined;
}

/** What the check sees of the approver namespace/name in its Deployment and Lease (the API's defaults filled in). */
export function approverSeen(namespace: string, name: string, { deployment, lease }: ApproverObjects): ApproverSeen {
  const renewTime = lease?.spec?.renewTime;
  return {
    namespace,
    name,
    deployment:
      deployment === undefined
        ? undefined
        : { replicas: deployment.spec?.replicas ?? 1, ready: deployment.status?.readyReplicas ?? 0 },
    lease:
      lease === undefined
        ? undefined
        : {
            holder: lease.spec?.holderIdentity ?? '',
            renewTime: renewTime === undefined ? undefined : new Date(renewTime).getTime(),
            durationSeconds: lease.spec?.leaseDurationSeconds ?? 15,
          },
  };
}

/** The approver check when its Deployment or Lease could not be read (not a 404). */
export function approverUnreadableCheck(namespace: string, name: string, message: string): CheckResult {
  const base = certificate('approver', 'the approver is installed and ready');
  return unreadableCheck(base, `the Deployment and Lease ${namespace}/${name}`, 'target', message);
}

export function approverChecks(seen: ApproverSeen, now: number): CheckResult[] {
  const where = `${seen.namespace}/${seen.name}`;
  const install =
    `install the approver chart in the target (helm install kubeconfig-rotator-approver charts/kubeconfig-rotator-approver ` +
    `--namespace ${seen.namespace}), or give --approver-namespace and --approver-name of the release you installed`;
  const installed = certificate('approver', 'the approver is installed and ready');
  const results: CheckResult[] = [];
  if (seen.deployment === undefined)
    return [
      problem('fail', installed, `no Deployment ${where} in the target: nothing approves the sidecar's CSRs`, install),
    ];
  results.push(
    seen.deployment.ready > 0
      ? pass(
          installed.id,
          installed.group,
          installed.title,
          `Deployment ${where}: ${String(seen.deployment.ready)}/${String(seen.deployment.replicas)} ready`,
        )
      : problem(
          'fail',
          installed,
          `Deployment ${where} has no ready replica (0/${String(seen.deployment.replicas)})`,
          `kubectl -n ${seen.namespace} describe deployment ${seen.name} and read its pods' logs`,
        ),
  );
  const leading = certificate('leader', 'an approver replica holds the Lease');
  const { lease } = seen;
  if (lease === undefined || lease.holder === '' || lease.renewTime === undefined) {
    results.push(
      problem(
        'fail',
        leading,
        lease === undefined ? `no Lease ${where}: no replica has ever led` : `Lease ${where} is held by no one`,
        `kubectl -n ${seen.namespace} logs deployment/${seen.name}: a replica that cannot take the Lease says why (RBAC on leases, the apiserver)`,
      ),
    );
    return results;
  }
  const age = Math.max(0, now - lease.renewTime);
  const ageText = `${String(Math.round(age / 1000))} s ago`;
  results.push(
    age <= lease.durationSeconds * 1000
      ? pass(leading.id, leading.group, leading.title, `${lease.holder}, renewed ${ageText}`)
      : problem(
          'fail',
          leading,
          `${lease.holder} last renewed Lease ${where} ${ageText}, longer than its ${String(lease.durationSeconds)} s duration: no replica is leading, CSRs stay pending`,
          `kubectl -n ${seen.namespace} get pods and logs of deployment/${seen.name}: the leader lost the apiserver or was stopped`,
        ),
  );
  return results;
}

export type PolicySeen =
  | { readonly result: 'absent'; readonly where: string }
  | { readonly result: 'invalid'; readonly where: string; readonly problems: readonly string[] }
  /** Evaluated for a first certificate of the source's bootstrap requester; commonName given or not. */
  | {
      readonly result: 'evaluated';
      readonly where: string;
      readonly commonName: string;
      readonly evaluation: Evaluation;
    }
  /** No identity given: whether any live policy applies to the source's bootstrap group. */
  | { readonly result: 'applies'; readonly where: string; readonly applies: boolean };

const policyBase = (source: string) => certificate('policy', `the approver's policy admits source ${source}`);

/** The policy check when the policy's ConfigMap (`where`) could not be read (not a 404). */
export function policyUnreadableCheck(source: string, where: string, message: string): CheckResult {
  return unreadableCheck(policyBase(source), where, 'target', message);
}

export function policyCheck(source: string, seen: PolicySeen): CheckResult {
  const group = bootstrapGroup(source);
  const base = policyBase(source);
  const addPolicy = `add a policy to the approver chart's values (policies[].bootstrap.groups: [${group}], identity.commonNames: the sidecar's commonName) and helm upgrade`;
  switch (seen.result) {
    case 'absent':
      return problem('fail', base, `no policy file (key policy.yaml) in ${seen.where}`, addPolicy);
    case 'invalid':
      return problem(
        'fail',
        base,
        `the policy in ${seen.where} is invalid: ${seen.problems.slice(0, 3).join('; ')}`,
        'correct the approver chart values (the approver refuses this file too) and helm upgrade',
      );
    case 'applies':
      return seen.applies
        ? pass(
            base.id,
            base.group,
            base.title,
            `a policy in ${seen.where} names ${group} (give --common-name to evaluate the identity too)`,
          )
        : problem(
            'fail',
            base,
            `no policy in ${seen.where} names group ${group}: the sidecar's CSRs would stay pending`,
            addPolicy,
          );
    case 'evaluated':
      return evaluatedPolicy(base, group, seen, addPolicy);
  }
}

function evaluatedPolicy(
  base: ReturnType<typeof policyBase>,
  group: string,
  seen: Extract<PolicySeen, { result: 'evaluated' }>,
  addPolicy: string,
): CheckResult {
  const { evaluation } = seen;
  const asked = `a first certificate for CN=${seen.commonName} requested by ${group}`;
  switch (evaluation.result) {
    case 'approved':
      return evaluation.dryRun
        ? problem(
            'warn',
            base,
            `only dry-run policy ${evaluation.policy} would approve ${asked}: nothing approves it`,
            `set dryRun: false on policy ${evaluation.policy} when its decisions look right`,
          )
        : pass(base.id, base.group, base.title, `policy ${evaluation.policy} approves ${asked}`);
    case 'review':
      return problem(
        'warn',
        base,
        `policy ${evaluation.policy} allows ${asked} if a SubjectAccessReview for the requester allows it, which the check does not make`,
        `grant the source's bootstrap group what policy ${evaluation.policy}'s subjectAccessReview asks (docs/approver.md)`,
      );
    case 'denied':
      return problem(
        'fail',
        base,
        `${seen.where} denies ${asked}: ${evaluation.findings.slice(0, 3).map(formatFinding).join('; ')}`,
        `allow CN=${seen.commonName} in the policy for ${group} (identity.commonNames) and helm upgrade, or set the sidecar's commonName to one it allows`,
      );
    case 'unprocessed':
      return problem(
        'fail',
        base,
        evaluation.reason === 'otherSigner'
          ? `${seen.where} serves another signer than kubernetes.io/kube-apiserver-client`
          : `no policy in ${seen.where} applies to ${group}: the sidecar's CSRs would stay pending`,
        addPolicy,
      );
  }
}

/** What a sidecar of `source` asks on its first certificate, for the approver's own evaluate(). */
export function firstCertificateFacts(input: {
  readonly source: string;
  readonly tokenUser: string;
  readonly csrPem: string;
  readonly usages: readonly string[];
  readonly expirationSeconds: number;
}): RequestFacts {
  return {
    signerName: 'kubernetes.io/kube-apiserver-client',
    usages: input.usages,
    expirationSeconds: input.expirationSeconds,
    requester: {
      username: input.tokenUser,
      groups: [bootstrapGroup(input.source), 'system:bootstrappers', 'system:authenticated'],
    },
    request: parseCertificationRequest(input.csrPem),
  };
}
