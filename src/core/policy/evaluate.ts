// Deciding one CSR against the policy file. Pure: the caller passes the parsed request, the requester and the
// policies, and performs any SubjectAccessReview the result asks for (completeReview finishes the decision).
//
// - A policy applies when the requester is one of its bootstrap users, groups or federated users (a first
//   certificate: a bootstrap token, or a source ServiceAccount's token the target maps to a user), or when
//   the requester's own username is an identity it allows and renewal is on (a renewal). A renewal must be
//   proven by a client certificate (renewal.ts), and asks for no longer than the strictest policy that allows
//   the identity, so an identity first issued under a short-lived policy cannot renew under a broader one.
// - Live policies are consulted first; dry-run policies only when no live one applies.
// - Among the policies that apply, the first in file order that approves wins; if none does, the CSR is denied
//   with every failing check of every policy that applied.
// - No policy applies: Unprocessed (left pending), or Denied with denyUnmatched. Whether one could apply depends
//   on the requester alone, so decideUnread() tells before the request is read (the approver then never reads it).
import type { ApprovalPath, Approved, Decision, Denied, Finding, RequestedIdentity } from './decision.ts';
import { sortFindings } from './decision.ts';
import { isSystemName, matchesAny, quote } from './names.ts';
import { renewalCredentialProblem } from './renewal.ts';
import { requestedIdentity, sharedFindings, type RequestFacts, type Requester } from './request-checks.ts';
import { REVIEW_DEFAULTS, type Policy, type PolicyFile } from './schema.ts';

/** The resource attributes a SubjectAccessReview asks about for the requester. */
export interface ReviewAttributes {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
}

export interface ReviewCandidate {
  readonly policy: string;
  readonly path: ApprovalPath;
  readonly attributes: ReviewAttributes;
}

/** Every check passed for these policies, each of which also wants a SubjectAccessReview. */
export interface NeedsReview {
  readonly result: 'review';
  /** In file order; the first one the review allows approves the CSR. */
  readonly candidates: readonly ReviewCandidate[];
  readonly identity: RequestedIdentity;
  readonly dryRun: boolean;
  /** The first policy that applied, named by a denial. */
  readonly policy: string;
  /** What every other policy that applied found; completeReview adds the refused reviews to it. */
  readonly otherFindings: readonly Finding[];
  readonly policyOrder: readonly string[];
}

export type Evaluation = Decision | NeedsReview;

const OTHER_SIGNER: Decision = { result: 'unprocessed', reason: 'otherSigner' };

/**
 * The decision on a CSR whose request need not be read, because no policy (live or dry run) could apply to its
 * requester, or it is not of this approver's signer; undefined when a policy could apply.
 */
export function decideUnread(file: PolicyFile, signerName: string, requester: Requester): Decision | undefined {
  if (signerName !== file.signerName) return OTHER_SIGNER;
  if (file.policies.some((policy) => applicablePath(policy, requester) !== undefined)) return undefined;
  return unmatched(file, requester.username);
}

export function evaluate(facts: RequestFacts, file: PolicyFile): Evaluation {
  if (facts.signerName !== file.signerName) return OTHER_SIGNER;
  const order = file.policies.map((policy) => policy.name);
  const livePolicies = file.policies.filter((policy) => !policy.dryRun);
  const live = evaluateWith(livePolicies, livePolicies, facts, order, false);
  if (live !== undefined) return live;
  // A dry run shows what would happen were its policies live: the renewal bound then counts them too.
  const dryRun = evaluateWith(
    file.policies.filter((policy) => policy.dryRun),
    file.policies,
    facts,
    order,
    true,
  );
  return dryRun ?? unmatched(file, facts.requester.username);
}

function unmatched(file: PolicyFile, username: string): Decision {
  if (!file.denyUnmatched) return { result: 'unprocessed', reason: 'noPolicy' };
  return {
    result: 'denied',
    findings: [{ check: 'policy.unmatched', message: `no policy applies to requester ${quote(username)}` }],
    dryRun: false,
  };
}

/** Finishes an evaluation that needed SubjectAccessReviews; `allowed[i]` answers `candidates[i]`. */
export function completeReview(evaluation: NeedsReview, allowed: readonly boolean[]): Approved | Denied {
  const index = allowed.findIndex((answer) => answer);
  const winner = index < 0 ? undefined : evaluation.candidates[index];
  if (winner !== undefined) return approve(winner.policy, winner.path, evaluation.identity, evaluation.dryRun);
  const refused: Finding[] = evaluation.candidates.map((candidate) => ({
    check: 'subjectAccessReview',
    policy: candidate.policy,
    message: `the requester may not ${describeAttributes(candidate.attributes)}`,
  }));
  return deny([...evaluation.otherFindings, ...refused], evaluation.policyOrder, evaluation.dryRun, evaluation.policy);
}

function describeAttributes(attributes: ReviewAttributes): string {
  const resource = [attributes.resource, attributes.subresource].filter((part) => part !== '').join('/');
  const group = attributes.group === '' ? '' : `.${attributes.group}`;
  return `${attributes.verb} ${resource}${group} ${JSON.stringify(attributes.name)}`;
}

function applicablePath(policy: Policy, requester: Requester): ApprovalPath | undefined {
  if (policy.bootstrap.users.includes(requester.username)) return 'firstCertificate';
  if (requester.groups.some((group) => policy.bootstrap.groups.includes(group))) return 'firstCertificate';
  // A source ServiceAccount's token, mapped by the target's jwt authenticator (federated bootstrap).
  if (matchesAny(policy.bootstrap.federatedUsers, requester.username)) return 'firstCertificate';
  if (
    policy.renewal &&
    !isSystemName(requester.username) &&
    matchesAny(policy.identity.commonNames, requester.username)
  )
    return 'renewal';
  return undefined;
}

function reviewAttributesFor(policy: Policy): ReviewAttributes | undefined {
  const review = policy.subjectAccessReview;
  if (review === false) return undefined;
  const { name, ...attributes } = review === true ? { ...REVIEW_DEFAULTS, name: undefined } : review;
  return { ...attributes, name: name ?? policy.name };
}

/** The strictest maxExpirationSeconds among `policies` that allow `identity`, with the policy that sets it. */
function strictestBound(
  policies: readonly Policy[],
  identity: RequestedIdentity,
): { readonly policy: string; readonly maxExpirationSeconds: number } | undefined {
  let strictest: { policy: string; maxExpirationSeconds: number } | undefined;
  for (const policy of policies) {
    if (!allowsIdentity(policy, identity)) continue;
    if (strictest === undefined || policy.maxExpirationSeconds < strictest.maxExpirationSeconds)
      strictest = { policy: policy.name, maxExpirationSeconds: policy.maxExpirationSeconds };
  }
  return strictest;
}

function allowsIdentity(policy: Policy, identity: RequestedIdentity): boolean {
  return (
    matchesAny(policy.identity.commonNames, identity.commonName) &&
    identity.organizations.every((organization) => matchesAny(policy.identity.organizations, organization))
  );
}

/** `policies` are judged; `bounds` (a superset) are the ones whose limits a renewal also keeps to. */
function evaluateWith(
  policies: readonly Policy[],
  bounds: readonly Policy[],
  facts: RequestFacts,
  order: readonly string[],
  dryRun: boolean,
): Evaluation | undefined {
  const applicable = policies.flatMap((policy) => {
    const path = applicablePath(policy, facts.requester);
    return path === undefined ? [] : [{ policy, path }];
  });
  const [first] = applicable;
  if (first === undefined) return undefined;
  const shared = sharedFindings(facts);
  const identity = requestedIdentity(facts.request);
  const judged = applicable.map(({ policy, path }) => ({
    policy: policy.name,
    path,
    review: reviewAttributesFor(policy),
    findings: policyFindings(policy, path, facts, identity, bounds),
  }));
  const failing = judged.flatMap((entry) => entry.findings);
  if (shared.length === 0 && identity !== undefined) {
    const passing = judged.filter((entry) => entry.findings.length === 0);
    const direct = passing.find((entry) => entry.review === undefined);
    if (direct !== undefined) return approve(direct.policy, direct.path, identity, dryRun);
    const candidates = passing.flatMap(({ policy, path, review }) =>
      review === undefined ? [] : [{ policy, path, attributes: review }],
    );
    if (candidates.length > 0) {
      return {
        result: 'review',
        candidates,
        identity,
        dryRun,
        policy: first.policy.name,
        otherFindings: failing,
        policyOrder: order,
      };
    }
  }
  return deny([...shared, ...failing], order, dryRun, first.policy.name);
}

function policyFindings(
  policy: Policy,
  path: ApprovalPath,
  facts: RequestFacts,
  identity: RequestedIdentity | undefined,
  bounds: readonly Policy[],
): Finding[] {
  const findings: Finding[] = [];
  const add = (check: Finding['check'], message: string) => findings.push({ check, message, policy: policy.name });
  if (facts.expirationSeconds !== undefined && facts.expirationSeconds > policy.maxExpirationSeconds) {
    add(
      'spec.expirationSeconds',
      `${String(facts.expirationSeconds)} is above this policy's maximum of ${String(policy.maxExpirationSeconds)}`,
    );
  }
  if (identity === undefined) return findings;
  if (!matchesAny(policy.identity.commonNames, identity.commonName))
    add('identity.commonName', `${quote(identity.commonName)} is not an identity this policy allows`);
  const groups = identity.organizations.filter((o) => !matchesAny(policy.identity.organizations, o));
  if (groups.length > 0)
    add(
      'identity.organizations',
      `${groups.map(quote).join(', ')} ${groups.length === 1 ? 'is' : 'are'} not allowed by this policy`,
    );
  if (path === 'renewal') {
    const { username, groups: requesterGroups } = facts.requester;
    if (identity.commonName !== username)
      add('renewal.commonName', `renews ${quote(identity.commonName)} but the requester is ${quote(username)}`);
    const foreign = identity.organizations.filter((o) => !requesterGroups.includes(o));
    if (foreign.length > 0) add('renewal.organizations', `the requester is not in ${foreign.map(quote).join(', ')}`);
    const credential = renewalCredentialProblem(policy, facts.requester);
    if (credential !== undefined) add('renewal.credential', credential);
    const strictest = strictestBound(bounds, identity);
    if (
      strictest !== undefined &&
      strictest.maxExpirationSeconds < policy.maxExpirationSeconds &&
      facts.expirationSeconds !== undefined &&
      facts.expirationSeconds > strictest.maxExpirationSeconds
    )
      add(
        'spec.expirationSeconds',
        `${String(facts.expirationSeconds)} is above the maximum of ${String(strictest.maxExpirationSeconds)} of policy ${strictest.policy}, which also allows this identity: a renewal keeps to the strictest`,
      );
  }
  return findings;
}

function approve(policy: string, path: ApprovalPath, identity: RequestedIdentity, dryRun: boolean): Approved {
  return { result: 'approved', policy, path, dryRun, identity };
}

function deny(findings: readonly Finding[], order: readonly string[], dryRun: boolean, policy: string): Denied {
  return { result: 'denied', policy, findings: sortFindings(findings, order), dryRun };
}
