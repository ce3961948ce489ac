// The CSR history both the operator's check and the approver's `helm test` read: the decisions on the CSRs of a
// source's requesters, and whether anyone but our approver made them.
import { pass, problem, type CheckResult } from './model.ts';

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
