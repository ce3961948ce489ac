// How a target obtains a credential with a lifetime: the rotation loop needs only this. The CSR API
// (csr-issuer.ts) serves certificate targets, the TokenRequest API (token-issuer.ts) token targets.
import type { Credential } from '../core/credential/credential.ts';
import { describeError, httpStatus } from '../io/kube/errors.ts';
import type { KubeClient } from '../io/kube/rest.ts';
import { RotationError } from './errors.ts';

export interface IssuedCredential {
  readonly credential: Credential;
  /** What names the request in logs (a CSR's name, the ServiceAccount a token is for). */
  readonly request: string;
  /** Milliseconds spent in each step. */
  readonly timings: Readonly<Record<string, number>>;
}

export interface CredentialIssuer {
  /** Whether a request from before a restart is waiting to be completed. */
  hasPending(): Promise<boolean>;
  /** Obtains a fresh credential, authenticating with `client`'s credential. */
  obtain(client: KubeClient, signal: AbortSignal): Promise<IssuedCredential>;
  /** Forgets the pending request (once published, or when it can never complete). */
  finish(): Promise<void>;
  /**
   * Where a credential can be revoked before it expires: asks the target whether it still accepts the one
   * `client` carries (throws a RotationError, 'unauthorized' when refused), every `intervalMs`.
   */
  readonly acceptance?: { readonly intervalMs: number; check(client: KubeClient): Promise<void> } | undefined;
}

/** An API failure as a rotation error: 401/403 say the credential is not (or no longer) accepted. */
export function classify(error: unknown, doing: string): RotationError {
  if (error instanceof RotationError) return error;
  const status = httpStatus(error);
  const result = status === 401 || status === 403 ? 'unauthorized' : 'error';
  return new RotationError(result, `${doing} failed: ${describeError(error)}`, { cause: error });
}
