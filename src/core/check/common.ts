// What the groups of `kubeconfig-rotator check`'s decisions share: the credential kind and cluster role they are
// asked for, a check's id and group by target kind, and the results more than one group gives the same way.
import { SELF_SUBJECT_REVIEW } from '../kube-version.ts';
import { problem, type CheckGroup, type CheckId, type CheckResult } from './model.ts';

export type CredentialKind = 'certificate' | 'token' | 'federated';
export type ClusterRole = 'target' | 'source';

type CheckBase = { readonly id: CheckId; readonly group: CheckGroup; readonly title: string };

/** The part of a check's id after its group's prefix ("bootstrap-token" of "certificate.bootstrap-token"). */
type IdIn<Prefix extends string> = CheckId extends infer Id
  ? Id extends `${Prefix}.${infer Rest}`
    ? Rest
    : never
  : never;

export const certificate = (id: IdIn<'certificate'>, title: string) =>
  ({ id: `certificate.${id}`, group: 'certificate target' as CheckGroup, title }) as const;

export const token = (id: IdIn<'token'>, title: string) =>
  ({ id: `token.${id}`, group: 'token target' as CheckGroup, title }) as const;

/** A check whose object could not be read (not a 404): it fails, saying so, rather than guessing. */
export function unreadableCheck(base: CheckBase, what: string, role: ClusterRole, message: string): CheckResult {
  return problem(
    'fail',
    base,
    `could not read ${what}: ${message}`,
    `run the check with a ${role} kubeconfig whose user may read ${what} (bootstrap's admin kubeconfig does)`,
  );
}

/**
 * A SelfSubjectReview made with a token (`whose`: "the check's", "the source's") that failed otherwise than by a
 * 401. Only a certificate target's version checks do not already ask for the release SelfSubjectReview needs.
 */
export function reviewFailedCheck(
  base: CheckBase,
  whose: string,
  message: string,
  credential: CredentialKind,
): CheckResult {
  const release =
    credential === 'certificate' ? ` (SelfSubjectReview needs Kubernetes 1.${String(SELF_SUBJECT_REVIEW.minor)})` : '';
  return problem(
    'fail',
    base,
    `the SelfSubjectReview with ${whose} token failed: ${message}`,
    `retry; if it persists, check the target apiserver${release}`,
  );
}

// Node's codes for a serving certificate the client does not trust or that is not for the name it asked.
const TLS_VERIFY_CODE = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/** Whether a connection error's code says the server's certificate failed verification. */
export const isTlsVerificationCode = (code: string): boolean => TLS_VERIFY_CODE.test(code);

/** A connection to a target made as a sidecar makes it (the source's published kubeconfig, the sidecar's own). */
export type EndpointTrial =
  | { readonly result: 'invalid'; readonly message: string }
  /** An HTTP answer of any status: the TLS handshake verified the server with the kubeconfig's CA and name. */
  | { readonly result: 'answered' }
  | { readonly result: 'tls'; readonly message: string }
  | { readonly result: 'unreachable'; readonly message: string };
