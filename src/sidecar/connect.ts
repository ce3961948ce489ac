// How the sidecar reaches a target's API: as the credential it holds, or as the bootstrap kubeconfig's user.
// Passed to the rotation loop (rotator.ts) from run.ts: the loop never builds a client itself.
import type { Credential } from '../core/credential/credential.ts';
import { clientConfigFor } from '../core/kubeconfig/client-config.ts';
import { createKubeClient, type KubeClient } from '../io/kube/rest.ts';
import type { BootstrapCredential } from './bootstrap-credential.ts';

/** Where the target is and how its serving certificate is checked. */
export interface Endpoint {
  readonly server: string;
  readonly caPem: string;
  readonly tlsServerName?: string;
}

/** A client of the target's API for one credential; the caller closes it. */
export type Connect = (endpoint: Endpoint, credential: Credential | BootstrapCredential) => KubeClient;

/** The bootstrap kubeconfig's user goes to the server and CA that kubeconfig names, as it always has. */
export const connectTarget: Connect = (endpoint, credential) =>
  'config' in credential
    ? createKubeClient(credential.config, { credentials: credential.credentials })
    : createKubeClient(clientConfigFor(endpoint, credential));
