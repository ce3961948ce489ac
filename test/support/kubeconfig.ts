// In-memory KubeConfigs (@kubernetes/client-node) for one credential against one cluster, for tests and benches
// (nothing touches the disk).
import { KubeConfig } from '@kubernetes/client-node';

export interface ClusterEndpoint {
  readonly server: string;
  /** PEM of the CA that signed the apiserver's serving certificate. */
  readonly caPem: string;
}

export type Credential = { readonly token: string } | { readonly certPem: string; readonly keyPem: string };

const base64 = (pem: string) => Buffer.from(pem, 'utf8').toString('base64');

export function kubeConfigFor(endpoint: ClusterEndpoint, credential: Credential, name = 'target'): KubeConfig {
  const kubeConfig = new KubeConfig();
  const user =
    'token' in credential
      ? { name, token: credential.token }
      : { name, certData: base64(credential.certPem), keyData: base64(credential.keyPem) };
  kubeConfig.loadFromOptions({
    clusters: [{ name, server: endpoint.server, caData: base64(endpoint.caPem), skipTLSVerify: false }],
    users: [user],
    contexts: [{ name, cluster: name, user: name }],
    currentContext: name,
  });
  return kubeConfig;
}
