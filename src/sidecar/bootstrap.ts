// The bootstrap kubeconfig (a mounted Secret): the credential for the first certificate, and the target's
// server and CA. Read whole and checked field by field, so a broken file is reported with what is wrong.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export interface BootstrapCredential {
  readonly path: string;
  readonly server: string;
  readonly caPem: string;
  readonly kubeConfig: KubeConfig;
  /** Changes whenever the file's content does. */
  readonly fingerprint: string;
}

export class BootstrapKubeconfigError extends Error {}

/** Undefined when the file does not exist (yet); throws BootstrapKubeconfigError when it is unusable. */
export function readBootstrapKubeconfig(
  path: string,
  options: { readonly credentialRequired: boolean } = { credentialRequired: true },
): BootstrapCredential | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BootstrapKubeconfigError(`${path}: cannot be read: ${(error as Error).message}`, { cause: error });
  }
  const fail = (field: string, problem: string): never => {
    throw new BootstrapKubeconfigError(`${path}: ${field}: ${problem}`);
  };
  const kubeConfig = new KubeConfig();
  try {
    kubeConfig.loadFromString(text);
    // As loadFromFile does: relative file references are relative to the kubeconfig.
    kubeConfig.makePathsAbsolute(dirname(path));
  } catch (error) {
    fail(
      '(document)',
      `not a valid kubeconfig: ${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)}`,
    );
  }
  if (kubeConfig.getCurrentContext() === '') fail('current-context', 'is not set');
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  if (context === null)
    fail('current-context', `names context "${kubeConfig.getCurrentContext()}", which does not exist`);
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null)
    return fail(`contexts[${kubeConfig.getCurrentContext()}].context.cluster`, 'names a cluster that does not exist');
  const clusterField = `clusters[${cluster.name}].cluster`;
  if (!/^https:\/\//.test(cluster.server))
    fail(`${clusterField}.server`, `must be an https URL, got "${cluster.server}"`);
  if (cluster.skipTLSVerify)
    fail(`${clusterField}.insecure-skip-tls-verify`, 'must not be set: the target must be verified with its CA');
  let caPem: string | undefined;
  if (cluster.caData !== undefined && cluster.caData !== '')
    caPem = Buffer.from(cluster.caData, 'base64').toString('utf8');
  else if (cluster.caFile !== undefined && cluster.caFile !== '') {
    const caPath = isAbsolute(cluster.caFile) ? cluster.caFile : join(dirname(path), cluster.caFile);
    try {
      caPem = readFileSync(caPath, 'utf8');
    } catch (error) {
      fail(`${clusterField}.certificate-authority`, `cannot read ${caPath}: ${(error as Error).message}`);
    }
  }
  if (caPem?.includes('-----BEGIN CERTIFICATE-----') !== true)
    fail(`${clusterField}.certificate-authority-data`, 'is missing or not a PEM certificate');
  const user = kubeConfig.getCurrentUser();
  if (user === null)
    return fail(`contexts[${kubeConfig.getCurrentContext()}].context.user`, 'names a user that does not exist');
  const hasCredential = [user.token, user.certData, user.certFile, user.exec, user.authProvider].some(
    (value) => value !== undefined && value !== '',
  );
  // A federated target's needs only the server and CA: its tokens come from the source.
  if (!hasCredential && options.credentialRequired)
    fail(`users[${user.name}].user`, 'has no credential (token, client certificate, exec or auth provider)');
  return {
    path,
    server: cluster.server,
    caPem: caPem ?? '',
    kubeConfig,
    fingerprint: createHash('sha256').update(text).digest('hex'),
  };
}

/** What a target's bootstrap kubeconfig must hold: a credential, except for a federated target. */
export const bootstrapNeeds = (target: { readonly credential: string }) => ({
  credentialRequired: target.credential !== 'federated',
});
