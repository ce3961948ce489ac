// A target's bootstrap credential: the bootstrap kubeconfig (a mounted Secret) its first request authenticates
// with, and the target's server and CA. Read whole and checked field by field, so a broken file is reported
// with what is wrong.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseClientConfig, type ClientConfig } from '../core/kubeconfig/client-config.ts';
import { kubeCredentials, type Credentials } from '../io/kube/credentials.ts';
import type { TargetConfig } from '../core/config/sidecar.ts';

export interface BootstrapCredential {
  readonly path: string;
  readonly server: string;
  readonly caPem: string;
  readonly config: ClientConfig;
  /** Kept with the file's content, so an exec plugin's credential is reused until it expires. */
  readonly credentials: Credentials;
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
  let config: ClientConfig;
  try {
    config = parseClientConfig(text, dirname(path), { bootstrap: options });
  } catch (error) {
    throw new BootstrapKubeconfigError(`${path}: ${(error as Error).message}`, { cause: error });
  }
  const caField = `${config.fields?.cluster ?? 'cluster'}.certificate-authority`;
  let caPem: string | undefined;
  const ca = config.certificateAuthority;
  if (ca !== undefined && 'pem' in ca) caPem = ca.pem;
  else if (ca !== undefined) {
    try {
      caPem = readFileSync(ca.file, 'utf8');
    } catch (error) {
      throw new BootstrapKubeconfigError(`${path}: ${caField}: cannot read ${ca.file}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  if (caPem?.includes('-----BEGIN CERTIFICATE-----') !== true)
    throw new BootstrapKubeconfigError(`${path}: ${caField}-data: is missing or not a PEM certificate`);
  // The CA read here is the one the target is known by: requests verify it, not the file read again.
  const pinned: ClientConfig = { ...config, certificateAuthority: { pem: caPem } };
  return {
    path,
    server: config.server,
    caPem,
    config: pinned,
    credentials: kubeCredentials(pinned),
    fingerprint: createHash('sha256').update(text).digest('hex'),
  };
}

/**
 * What a target's bootstrap kubeconfig must hold: a credential, except for a federated target and a certificate
 * target with federated bootstrap (the source's token authenticates; the file gives the server and CA).
 */
export const bootstrapNeeds = (target: TargetConfig) => ({
  credentialRequired:
    target.credential === 'token' || (target.credential === 'certificate' && target.bootstrap?.with !== 'federated'),
});
