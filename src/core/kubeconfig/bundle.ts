// The set of files a sink publishes for one target: the credential (a certificate and its key, or a token),
// the target's CA and a kubeconfig that uses them (by relative path, or with everything embedded).
import type { Credential } from '../credential/credential.ts';
import { renderKubeconfig, type KubeconfigCredential } from './render.ts';

export interface CredentialBundle {
  /** Target name: the kubeconfig's cluster, user and context. */
  readonly name: string;
  readonly server: string;
  readonly caPem: string;
  /** The bootstrap kubeconfig's tls-server-name: every client of the target must check the certificate against it. */
  readonly tlsServerName?: string;
  readonly credential: Credential;
  /** When the sidecar will renew it (ms since the epoch); recorded where a sink has room for metadata. */
  readonly nextRotation?: number;
}

export interface OutputFile {
  readonly content: string;
  /** File mode in a directory sink: anything holding the private key or the token is 0600. */
  readonly mode: 0o600 | 0o644;
}

export const FILE_NAMES = {
  cert: 'tls.crt',
  key: 'tls.key',
  token: 'token',
  ca: 'ca.crt',
  kubeconfig: 'kubeconfig',
} as const;

/** The kubeconfig user for a credential, embedded. */
export function embeddedCredential(credential: Credential): KubeconfigCredential {
  return 'token' in credential
    ? { token: credential.token }
    : { clientCertificate: { pem: credential.certPem }, clientKey: { pem: credential.keyPem } };
}

/** The kubeconfig user for a credential whose files are in `directory` ('' for paths relative to the kubeconfig). */
export function referencedCredential(credential: Credential, directory: string): KubeconfigCredential {
  const path = (name: string) => (directory === '' ? name : `${directory}/${name}`);
  return 'token' in credential
    ? { tokenFile: path(FILE_NAMES.token) }
    : { clientCertificate: { file: path(FILE_NAMES.cert) }, clientKey: { file: path(FILE_NAMES.key) } };
}

export function embeddedKubeconfig(bundle: CredentialBundle): string {
  return renderKubeconfig({
    name: bundle.name,
    server: bundle.server,
    certificateAuthority: { pem: bundle.caPem },
    tlsServerName: bundle.tlsServerName,
    credential: embeddedCredential(bundle.credential),
  });
}

/** The credential's own files: tls.crt and tls.key, or token. */
export function credentialFiles(credential: Credential): Record<string, OutputFile> {
  return 'token' in credential
    ? { [FILE_NAMES.token]: { content: credential.token, mode: 0o600 } }
    : {
        [FILE_NAMES.cert]: { content: credential.certPem, mode: 0o644 },
        [FILE_NAMES.key]: { content: credential.keyPem, mode: 0o600 },
      };
}

/**
 * Files for a directory. Relative paths in a kubeconfig resolve against the kubeconfig's own directory
 * (client-go and kubectl do this for every path; client-node for certificate files, not a token file), so
 * the file works wherever the agent mounts the volume, and never changes at a rotation.
 */
export function directoryFiles(bundle: CredentialBundle, embed: boolean): Record<string, OutputFile> {
  const kubeconfig = embed
    ? embeddedKubeconfig(bundle)
    : renderKubeconfig({
        name: bundle.name,
        server: bundle.server,
        certificateAuthority: { file: FILE_NAMES.ca },
        tlsServerName: bundle.tlsServerName,
        credential: referencedCredential(bundle.credential, ''),
      });
  return {
    ...credentialFiles(bundle.credential),
    [FILE_NAMES.ca]: { content: bundle.caPem, mode: 0o644 },
    [FILE_NAMES.kubeconfig]: { content: kubeconfig, mode: embed ? 0o600 : 0o644 },
  };
}
