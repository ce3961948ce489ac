// Token targets: a ServiceAccount token from the TokenRequest API, bound to the lease Secret (deleting it
// revokes every token of this source at once), checked with a SelfSubjectReview before it is published.
// A request is one call, so nothing is pending across a restart.
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { tokenRequestBody } from '../core/bootstrap/token-plan.ts';
import { serviceAccountUser } from '../core/credential/token.ts';
import type { Clock } from '../io/clock.ts';
import { RotationError } from './errors.ts';
import { classify, type CredentialIssuer, type IssuedCredential } from './issuer.ts';

export interface TokenIssuerOptions {
  readonly serviceAccount: { readonly namespace: string; readonly name: string };
  readonly leaseSecret: string;
  readonly expirationSeconds: number;
  /** Empty: the apiserver's own audiences. */
  readonly audiences: readonly string[];
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
        check: async (kubeConfig) => {
          const account = `${options.serviceAccount.namespace}/${options.serviceAccount.name}`;
          const user = await whoIs(kubeConfig).catch((error: unknown) => {
            throw classify(error, `checking the current token of ${account}`);
          });
          this.#expect(user);
        },
      };
  }

  hasPending(): Promise<boolean> {
    return Promise.resolve(false);
  }

  finish(): Promise<void> {
    return Promise.resolve();
  }

  async obtain(kubeConfig: KubeConfig): Promise<IssuedCredential> {
    const { serviceAccount, leaseSecret, expirationSeconds, audiences, clock } = this.#options;
    const account = `${serviceAccount.namespace}/${serviceAccount.name}`;
    const started = clock.monotonic();
    let token: string | undefined;
    try {
      const response = await kubeConfig.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
        namespace: serviceAccount.namespace,
        name: serviceAccount.name,
        body: tokenRequestBody(leaseSecret, expirationSeconds, audiences),
      });
      token = response.status?.token;
    } catch (error) {
      throw classify(error, `requesting a token for ServiceAccount ${account}`);
    }
    if (token === undefined || token === '')
      throw new RotationError('error', `the TokenRequest for ServiceAccount ${account} returned no token`);
    const requested = clock.monotonic();
    this.#options.onStep?.('token-issued');
    await this.#checkWorks(kubeConfig, token, account);
    return {
      credential: { token },
      request: `ServiceAccount ${account}`,
      timings: { request: requested - started, check: clock.monotonic() - requested },
    };
  }

  /** The target must accept the token as exactly our ServiceAccount before anyone is given it. */
  async #checkWorks(authenticated: KubeConfig, token: string, account: string): Promise<void> {
    const cluster = authenticated.getCurrentCluster();
    if (cluster === null) throw new RotationError('error', 'the kubeconfig has no current cluster');
    const withToken = new KubeConfig();
    withToken.loadFromOptions({
      clusters: [cluster],
      users: [{ name: 'token', token }],
      contexts: [{ name: 'token', cluster: cluster.name, user: 'token' }],
      currentContext: 'token',
    });
    const user = await whoIs(withToken).catch((error: unknown) => {
      throw new RotationError('rejected', `the new token for ${account} is not accepted`, {
        cause: classify(error, 'a SelfSubjectReview'),
      });
    });
    this.#expect(user);
  }

  #expect(user: string | undefined): void {
    const expected = serviceAccountUser(this.#options.serviceAccount);
    if (user !== expected)
      throw new RotationError('rejected', `the token authenticates as "${String(user)}", expected "${expected}"`);
  }
}

/** The user the target sees for this kubeconfig's credential. */
async function whoIs(kubeConfig: KubeConfig): Promise<string | undefined> {
  const review = await kubeConfig.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  return review.status?.userInfo?.username;
}
