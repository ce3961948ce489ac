// The approver's policy file: which requesters may obtain which client identities, and how. One schema gives
// the types, the defaults and every problem of a bad file by field path (see docs/approver.md).
import { z } from 'zod';
import { parseAndValidate, type Validated } from '../config/validate.ts';
import { isSystemName, matchesAny, SYSTEM_PREFIX } from './names.ts';

const DEFAULT_SIGNER = 'kubernetes.io/kube-apiserver-client';
const DEFAULT_MAX_EXPIRATION_SECONDS = 86_400;
/** The apiserver refuses shorter lifetimes. */
export const MIN_EXPIRATION_SECONDS = 600;

// Kubernetes signer names are <domain>/<path>.
const SIGNER_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[A-Za-z0-9][-A-Za-z0-9_./]*$/;
// Policy names appear in conditions, events and metric labels: keep them short and plain.
const POLICY_NAME = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

const nonEmpty = z.string().min(1, 'must not be empty');

// Groups whose members are not one source cluster's bootstrap identities: every authenticated (or anonymous)
// requester, every kubeadm join token, every ServiceAccount (of a namespace), every node, every admin.
const SHARED_GROUPS = new Set([
  'system:authenticated',
  'system:unauthenticated',
  'system:bootstrappers',
  'system:serviceaccounts',
  'system:nodes',
  'system:masters',
]);
const SERVICE_ACCOUNT_NAMESPACE_GROUP_PREFIX = 'system:serviceaccounts:';

const bootstrapGroup = nonEmpty.refine(
  (group) => !SHARED_GROUPS.has(group) && !group.startsWith(SERVICE_ACCOUNT_NAMESPACE_GROUP_PREFIX),
  'admits requesters beyond one source cluster (every user, token, ServiceAccount, node or admin of that kind): name a group of your own bootstrap tokens',
);

/**
 * `true`: a renewal needs the apiserver's proof that the requester authenticated with a client certificate (the
 * credential-id it records, Kubernetes 1.32 and later). `trustUsername`: where the apiserver records no
 * credential-id, the username alone counts (weaker: any credential of that name would do).
 */
export const RENEWAL_TRUST_USERNAME = 'trustUsername';

/** An exact name, or a pattern in which each `*` matches any run of characters. */
const namePattern = nonEmpty.refine(
  (value) => !value.startsWith(SYSTEM_PREFIX),
  `must not start with "${SYSTEM_PREFIX}": system identities are never approved`,
);

/**
 * A user the target maps from a source's ServiceAccount token (federated bootstrap), exact or a pattern: it
 * starts with that source's own user prefix (e.g. `source-west:system:serviceaccount:agents:*`), so a leading `*`
 * (every source's users, and any other user) and a system: name (never a mapped user) are refused.
 */
const federatedUser = namePattern.refine(
  (value) => !value.startsWith('*'),
  "must start with the source's user prefix (e.g. source-west:system:serviceaccount:agents:*), not *: a leading * admits every source's users",
);

/** What `subjectAccessReview: true` asks: may the requester create certificatesigningrequests/kubeconfig-rotator? */
export const REVIEW_DEFAULTS = {
  verb: 'create',
  group: 'certificates.k8s.io',
  resource: 'certificatesigningrequests',
  subresource: 'kubeconfig-rotator',
} as const;

const reviewAttributes = z.strictObject({
  verb: nonEmpty.default(REVIEW_DEFAULTS.verb),
  group: z.string().default(REVIEW_DEFAULTS.group),
  resource: nonEmpty.default(REVIEW_DEFAULTS.resource),
  subresource: z.string().default(REVIEW_DEFAULTS.subresource),
  /** The resource name asked about; the policy's name when absent, so RBAC can grant one policy by resourceNames. */
  name: z.string().optional(),
});

const policy = z
  .strictObject({
    name: z
      .string()
      .regex(
        POLICY_NAME,
        'must be lowercase letters, digits, "-" or "." (at most 63), starting and ending alphanumeric',
      ),
    /** Decide and report, but never write the decision. */
    dryRun: z.boolean().default(false),
    /**
     * Who may request a first certificate: bootstrap token users/groups, or the users the target maps from one
     * source's ServiceAccount tokens (federated bootstrap), exact or with `*`.
     */
    bootstrap: z
      .strictObject({
        users: z.array(nonEmpty).default([]),
        groups: z.array(bootstrapGroup).default([]),
        federatedUsers: z.array(federatedUser).default([]),
      })
      .default({ users: [], groups: [], federatedUsers: [] }),
    /** The identities this policy allows, for a first certificate and for renewal alike. */
    identity: z.strictObject({
      commonNames: z.array(namePattern).min(1, 'must allow at least one common name'),
      organizations: z.array(namePattern).default([]),
    }),
    /** Identities allowed above may renew their own certificate, authenticated by the current one. */
    renewal: z.union([z.boolean(), z.literal(RENEWAL_TRUST_USERNAME)]).default(true),
    maxExpirationSeconds: z.number().int().min(MIN_EXPIRATION_SECONDS).default(DEFAULT_MAX_EXPIRATION_SECONDS),
    /** Also ask the apiserver whether the requester may do this (RBAC as the policy language). */
    subjectAccessReview: z.union([z.boolean(), reviewAttributes]).default(false),
  })
  .superRefine((value, context) => {
    const { users, groups, federatedUsers } = value.bootstrap;
    if (users.length === 0 && groups.length === 0 && federatedUsers.length === 0 && value.renewal === false) {
      context.addIssue({
        code: 'custom',
        path: ['bootstrap'],
        message: 'names no bootstrap user, group or federated user, and renewal is off: the policy can never apply',
      });
    }
  });

export const policyFileSchema = z.strictObject({
  /** The one signer this approver serves; CSRs of other signers are never touched. */
  signerName: z
    .string()
    .regex(SIGNER_NAME, 'must be <domain>/<path>, e.g. kubernetes.io/kube-apiserver-client')
    .default(DEFAULT_SIGNER),
  /** Deny this signer's CSRs that no policy applies to (otherwise they are left pending). */
  denyUnmatched: z.boolean().default(false),
  policies: z.array(policy).superRefine(
    (policies, context) => {
      const seen = new Set<string>();
      policies.forEach((entry: PolicyInput | undefined, index) => {
        const name = entry?.name;
        if (typeof name !== 'string') return;
        if (seen.has(name))
          context.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicates the policy name "${name}"` });
        seen.add(name);
      });
      refuseIssuedBootstrapGroups(policies, context);
    },
    // Reported even when other fields are wrong, so one pass shows every problem.
    { when: (payload) => Array.isArray(payload.value) },
  ),
});

/** A policy as the file gives it, before validation: only the fields the file-wide checks read. */
interface PolicyInput {
  readonly name?: unknown;
  readonly bootstrap?: { readonly groups?: unknown };
  readonly identity?: { readonly organizations?: unknown };
}

const list = (value: unknown): readonly unknown[] => (Array.isArray(value) ? value : []);

// An identity issued with that O would be in the group, and so could bootstrap as any identity of that policy.
function refuseIssuedBootstrapGroups(policies: readonly (PolicyInput | undefined)[], context: z.RefinementCtx): void {
  const issued = policies
    .flatMap((entry) => list(entry?.identity?.organizations))
    .filter((organization) => typeof organization === 'string');
  policies.forEach((entry, index) => {
    list(entry?.bootstrap?.groups).forEach((group, position) => {
      // A system: organization is never issued, whatever the patterns say.
      if (typeof group === 'string' && !isSystemName(group) && matchesAny(issued, group))
        context.addIssue({
          code: 'custom',
          path: [index, 'bootstrap', 'groups', position],
          message: `is also an organization a policy issues: an issued identity could bootstrap as any identity of this policy`,
        });
    });
  });
}

export type PolicyFile = z.output<typeof policyFileSchema>;
export type Policy = PolicyFile['policies'][number];

export function parsePolicyFile(text: string): Validated<PolicyFile> {
  return parseAndValidate(text, policyFileSchema);
}
