// Token credentials from a TokenRequest API, checked with a SelfSubjectReview at the target before they are
// published. Token targets ask the target for tokens of their ServiceAccount there, bound to the lease
// Secret (deleting it revokes every token of the source at once); federated targets ask the source for
// tokens of a source ServiceAccount, for the target's audience, bound to the sidecar's Pod, which the
// target accepts because it trusts the source's issuer. A request is one call: nothing is pending across
// a restart.
import { boundTokenRequest, type BoundObject } from '../core/bootstrap/token-plan.ts';
import type { Clock } from '../io/clock.ts';
import { createKubeClient, type KubeClient } from '../io/kube/rest.ts';
import { RotationError } from './errors.ts';
import { classify, type CredentialIssuer, type IssuedCredential } from './issuer.ts';

export interface TokenIssuerOptions {
  readonly serviceAccount: { readonly namespace: string; readonly name: string };
  readonly boundTo?: BoundObject | undefined;
  readonly expirationSeconds: number;
  /** Empty: the apiserver's own audiences. */
  readonly audiences: readonly string[];
  /**
   * Where tokens are requested: the source cluster (federated). Unset: the target, authenticated with the
   * credential the rotation loop chose (the current token or the bootstrap one).
   */
  readonly requester?: KubeClient;
  /** The user the target must see for a new token; unset: any user it accepts. */
  readonly expectedUser?: string | undefined;
  /** How often to check the target still accepts the current token; 0: never. */
  readonly revocationCheckSeconds: number;
  readonly clock: Clock;
  readonly onStep?: (step: string) => void;
}

export class TokenIssuer implements CredentialIssuer {
  readonly #options: TokenIssuerOptions;
  readonly acceptance?: CredentialIssuer['acceptance'];

  constructor(options: TokenIssuerOptions) {
    this.#options = options;
    if (options.revocationCheckSeconds > 0)
      this.acceptance = {
        intervalMs: options.revocationCheckSeconds * 1000,
        check: async (client) => {
          const user = await whoIs(client).catch((error: unknown) => {
            throw classify(error, `checking the current token of ${this.#account}`);
          });
          this.#expect(user);
        },
      };
  }

  get #account(): string {
    const { serviceAccount } = this.#options;
    return `${serviceAccount.namespace}/${serviceAccount.name}`;
  }

  hasPending(): Promise<boolean> {
    return Promise.resolve(false);
  }

  finish(): Promise<void> {
    return Promise.resolve();
  }

  async obtain(client: KubeClient, signal: AbortSignal): Promise<IssuedCredential> {
    const { serviceAccount, boundTo, expirationSeconds, audiences, requester, clock } = this.#options;
    const account = this.#account;
    const where = requester === undefined ? '' : ' in the source cluster';
    const started = clock.monotonic();
    const token = await requestServiceAccountToken(
      requester ?? client,
      { serviceAccount, boundTo, expirationSeconds, audiences },
      signal,
      where,
    );
    const requested = clock.monotonic();
    this.#options.onStep?.('token-issued');
    await this.#checkWorks(client, token, account, signal);
    return {
      credential: { token },
      request: `ServiceAccount ${account}${where}`,
      timings: { request: requested - started, check: clock.monotonic() - requested },
    };
  }

  /** The target must accept the token as exactly the expected user before anyone is given it. */
  async #checkWorks(target: KubeClient, token: string, account: string, signal: AbortSignal): Promise<void> {
    const withToken = createKubeClient({ ...target.config, user: { token: { value: token } } });
    const hint =
      this.#options.requester === undefined
        ? ''
        : ": does the target's authentication configuration trust the source's issuer for this audience?";
    try {
      const user = await whoIs(withToken, signal).catch((error: unknown) => {
        throw new RotationError('rejected', `the target does not accept the new token for ${account}${hint}`, {
          cause: classify(error, 'a SelfSubjectReview'),
        });
      });
      this.#expect(user);
    } finally {
      await withToken.close();
    }
  }

  #expect(user: string | undefined): void {
    const expected = this.#options.expectedUser;
    if (user === undefined || (expected !== undefined && user !== expected))
      throw new RotationError(
        'rejected',
        `the token authenticates as "${String(user)}", expected "${expected ?? 'a user'}"`,
      );
  }
}

/** What one TokenRequest asks for: a token of this ServiceAccount, for these audiences, bound to this object. */
export interface ServiceAccountTokenRequest {
  readonly serviceAccount: { readonly namespace: string; readonly name: string };
  readonly boundTo?: BoundObject | undefined;
  readonly expirationSeconds: number;
  /** Empty: the apiserver's own audiences. */
  readonly audiences: readonly string[];
}

/**
 * One TokenRequest through `client` (token targets: the target; federated targets and federated bootstrap: the
 * source). Throws a RotationError naming the ServiceAccount and `where` it was asked.
 */
export async function requestServiceAccountToken(
  client: KubeClient,
  request: ServiceAccountTokenRequest,
  signal?: AbortSignal,
  where = '',
): Promise<string> {
  const { serviceAccount, boundTo, expirationSeconds, audiences } = request;
  const account = `${serviceAccount.namespace}/${serviceAccount.name}`;
  let token: string | undefined;
  try {
    const response = await client.request<{ status?: { token?: string } }>(
      'POST',
      `/api/v1/namespaces/${serviceAccount.namespace}/serviceaccounts/${serviceAccount.name}/token`,
      { body: boundTokenRequest(boundTo, expirationSeconds, audiences), ...(signal === undefined ? {} : { signal }) },
    );
    token = response.status?.token;
  } catch (error) {
    throw classify(error, `requesting a token for ServiceAccount ${account}${where}`);
  }
  if (token === undefined || token === '')
    throw new RotationError('error', `the TokenRequest for ServiceAccount ${account} returned no token`);
  return token;
}

/** The user the target sees for this client's credential. */
export async function whoIs(client: KubeClient, signal?: AbortSignal): Promise<string | undefined> {
  const review = await client.request<{ status?: { userInfo?: { username?: string } } }>(
    'POST',
    '/apis/authentication.k8s.io/v1/selfsubjectreviews',
    {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      ...(signal === undefined ? {} : { signal }),
    },
  );
  return review.status?.userInfo?.username;
}
