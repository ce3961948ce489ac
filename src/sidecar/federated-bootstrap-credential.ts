// The bootstrap credential of a certificate target with federated bootstrap: the first CSR (and any after the
// certificate expired) is authenticated with a token of the source's ServiceAccount (the pod's own by default)
// for the audience the target's jwt authenticator expects, requested from the source's TokenRequest API as
// federated targets do (token-issuer.ts), instead of the bootstrap kubeconfig's expiring bootstrap token. The
// bootstrap kubeconfig still gives the server and CA. Renewals use the certificate; the key never leaves the pod.
import type { Clock } from '../io/clock.ts';
import type { Credentials } from '../io/kube/credentials.ts';
import type { KubeClient } from '../io/kube/rest.ts';
import type { BootstrapCredential } from './bootstrap-credential.ts';
import { RotationError } from './errors.ts';
import { requestServiceAccountToken, type ServiceAccountTokenRequest } from './token-issuer.ts';

/** A token is used for at most this fraction of its life, then a new one is requested. */
const REUSE_FRACTION = 0.5;

export interface FederatedBootstrapOptions {
  /** The source cluster's API. */
  readonly source: KubeClient;
  readonly request: ServiceAccountTokenRequest;
  readonly clock: Pick<Clock, 'monotonic'>;
}

/**
 * Credentials that present a fresh source token: one TokenRequest, reused for half its life by every request of
 * the bootstrap client (the CSR's create and its watch), and forgotten when the target refuses it.
 */
export function federatedBootstrapCredentials(options: FederatedBootstrapOptions): Credentials {
  const { source, request, clock } = options;
  let cached: { token: string; until: number } | undefined;
  let running: Promise<string> | undefined;
  const account = `${request.serviceAccount.namespace}/${request.serviceAccount.name}`;
  const fresh = async (): Promise<string> => {
    if (cached !== undefined && clock.monotonic() < cached.until) return cached.token;
    // Concurrent requests share one TokenRequest; a failed one is not cached.
    running ??= requestServiceAccountToken(source, request, undefined, ' in the source cluster (federated bootstrap)')
      .then((token) => {
        cached = { token, until: clock.monotonic() + request.expirationSeconds * 1000 * REUSE_FRACTION };
        return token;
      })
      .catch((error: unknown) => {
        // A source that refuses the TokenRequest cannot bootstrap: reported as the bootstrap credential refused.
        throw new RotationError(
          'unauthorized',
          `no federated bootstrap token for ServiceAccount ${account}: ${(error as Error).message}`,
          { cause: error },
        );
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  return {
    async current() {
      return { token: await fresh() };
    },
    refused() {
      // The target refused it (its trust of the source removed, then restored): the next request asks anew.
      const had = cached !== undefined;
      cached = undefined;
      return had;
    },
  };
}

/**
 * The bootstrap kubeconfig's server and CA with the federated credentials in place of its own (it holds none).
 * The CA is pinned in the config (bootstrap-credential.ts), so only the bearer token comes from `credentials`.
 */
export function withFederatedBootstrap(
  bootstrap: BootstrapCredential | undefined,
  credentials: Credentials,
): BootstrapCredential | undefined {
  if (bootstrap === undefined) return undefined;
  return { ...bootstrap, credentials: withCa(bootstrap.caPem, credentials) };
}

function withCa(caPem: string, credentials: Credentials): Credentials {
  return {
    async current() {
      return { caPem, ...(await credentials.current()) };
    },
    refused: () => credentials.refused(),
  };
}
