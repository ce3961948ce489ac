// What an evaluation concludes, and how a conclusion is worded for the CSR's condition, an Event and a metric.
// Three outcomes, as in cert-manager's approver-policy: Approved, Denied, Unprocessed. An error is never a
// denial: errors never reach this module.

/** Every check the evaluator runs, in the order findings are reported. */
export const CHECKS = [
  'request.size',
  'request.pem',
  'request.der',
  'request.key',
  'request.signature',
  'request.subject',
  'request.subjectAltNames',
  'request.extensions',
  'request.attributes',
  'spec.usages',
  'spec.expirationSeconds',
  'identity.system',
  'identity.commonName',
  'identity.organizations',
  'renewal.commonName',
  'renewal.organizations',
  'renewal.credential',
  'subjectAccessReview',
  'policy.unmatched',
] as const;
export type Check = (typeof CHECKS)[number];

/** One failed check. `policy` is absent for checks every policy shares (the request's form, key, usages...). */
export interface Finding {
  readonly check: Check;
  readonly message: string;
  readonly policy?: string;
}

export type ApprovalPath = 'firstCertificate' | 'renewal';

export interface RequestedIdentity {
  readonly commonName: string;
  readonly organizations: readonly string[];
}

export interface Approved {
  readonly result: 'approved';
  readonly policy: string;
  readonly path: ApprovalPath;
  readonly dryRun: boolean;
  readonly identity: RequestedIdentity;
}

export interface Denied {
  readonly result: 'denied';
  /** The first policy that applied; absent when none did (denyUnmatched). */
  readonly policy?: string;
  /** Never empty; in a stable order: shared checks first, then by policy in file order, then by check. */
  readonly findings: readonly Finding[];
  readonly dryRun: boolean;
}

export interface Unprocessed {
  readonly result: 'unprocessed';
  /** otherSigner: not this approver's signer (ignored); noPolicy: no policy applies to the requester. */
  readonly reason: 'otherSigner' | 'noPolicy';
}

export type Decision = Approved | Denied | Unprocessed;

const CHECK_RANK = new Map<Check, number>(CHECKS.map((check, index) => [check, index]));

/** Orders findings: shared ones first, then by the policy's position, then by check, then by message. */
export function sortFindings(findings: readonly Finding[], policyOrder: readonly string[]): Finding[] {
  const policyRank = (finding: Finding) => (finding.policy === undefined ? -1 : policyOrder.indexOf(finding.policy));
  return [...findings].sort(
    (a, b) =>
      policyRank(a) - policyRank(b) ||
      (CHECK_RANK.get(a.check) ?? 0) - (CHECK_RANK.get(b.check) ?? 0) ||
      (a.message < b.message ? -1 : a.message > b.message ? 1 : 0),
  );
}

/** The label values a decision is counted under: bounded sets, never request content. */
export function metricLabels(decision: Decision): { policy: string; result: string; reason: string } {
  switch (decision.result) {
    case 'approved':
      return { policy: decision.policy, result: 'approved', reason: decision.path };
    case 'denied':
      return { policy: decision.policy ?? '', result: 'denied', reason: decision.findings[0]?.check ?? 'unknown' };
    case 'unprocessed':
      return { policy: '', result: 'unprocessed', reason: decision.reason };
  }
}

const CONDITION_REASONS = { approved: 'PolicyApproved', denied: 'PolicyDenied' } as const;
// Conditions are read by people with kubectl; a hostile request must not make them unbounded.
const MAX_CONDITION_MESSAGE = 4096;

/** `policy: check: message`, as conditions and logs show a finding. */
export function formatFinding(finding: Finding): string {
  return `${finding.policy === undefined ? '' : `${finding.policy}: `}${finding.check}: ${finding.message}`;
}

function bounded(message: string): string {
  return message.length > MAX_CONDITION_MESSAGE ? `${message.slice(0, MAX_CONDITION_MESSAGE - 1)}…` : message;
}

/** The condition written on the CSR: the policy and path for an approval, every finding for a denial. */
export function conditionFor(
  decision: Approved | Denied,
  requester: string,
): { type: 'Approved' | 'Denied'; reason: string; message: string } {
  if (decision.result === 'approved') {
    const path = decision.path === 'firstCertificate' ? 'a first certificate' : 'a renewal';
    const groups =
      decision.identity.organizations.length === 0
        ? 'no groups'
        : `groups ${decision.identity.organizations.map((o) => JSON.stringify(o)).join(', ')}`;
    return {
      type: 'Approved',
      reason: CONDITION_REASONS.approved,
      message: bounded(
        `policy ${decision.policy} allows ${path} for ${JSON.stringify(decision.identity.commonName)} (${groups}) requested by ${JSON.stringify(requester)}`,
      ),
    };
  }
  return {
    type: 'Denied',
    reason: CONDITION_REASONS.denied,
    message: bounded(`denied by kubeconfig-rotator approver: ${decision.findings.map(formatFinding).join('; ')}`),
  };
}

/** The Event for a decision: which policy and which checks, no request content and no policy details. */
export function eventFor(decision: Decision): { type: 'Normal' | 'Warning'; reason: string; message: string } {
  switch (decision.result) {
    case 'approved':
      return decision.dryRun
        ? {
            type: 'Normal',
            reason: 'DryRunApproved',
            message: `dry run: policy ${decision.policy} would approve (${decision.path})`,
          }
        : { type: 'Normal', reason: 'Approved', message: `approved by policy ${decision.policy} (${decision.path})` };
    case 'denied': {
      const checks = [...new Set(decision.findings.map((finding) => finding.check))].join(', ');
      return decision.dryRun
        ? { type: 'Warning', reason: 'DryRunDenied', message: `dry run: would deny: failed ${checks}` }
        : { type: 'Warning', reason: 'Denied', message: `denied: failed ${checks}` };
    }
    case 'unprocessed':
      return {
        type: 'Warning',
        reason: 'Unprocessed',
        message: 'no approver policy applies to this requester; left pending',
      };
  }
}
