// The set of files a sink publishes for one target: the certificate, its key, the target's CA and a
// kubeconfig that uses them (by relative path, or with everything embedded).
import { renderKubeconfig } from './render.ts';

export interface CredentialBundle {
  /** Target name: the kubeconfig's cluster, user and context. */
  readonly name: string;
  readonly server: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** When the sidecar will renew it (ms since the epoch); recorded where a sink has room for metadata. */
  readonly nextRotation?: number;
}

export interface OutputFile {
  readonly content: string;
  /** File mode in a directory sink: anything holding the private key is 0600. */
  readonly mode: 0o600 | 0o644;
}

export const FILE_NAMES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt', kubeconfig: 'kubeconfig' } as const;

export function embeddedKubeconfig(bundle: CredentialBundle): string {
  return renderKubeconfig({
    name: bundle.name,
    server: bundle.server,
    certificateAuthority: { pem: bundle.caPem },
    credential: { clientCertificate: { pem: bundle.certPem }, clientKey: { pem: bundle.keyPem } },
  });
}

/**
 * Files for a directory. Relative paths in a kubeconfig resolve against the kubeconfig's own directory
 * (client-go, kubectl and client-node all do this), so the file works wherever the agent mounts the volume.
 */
export function directoryFiles(bundle: CredentialBundle, embed: boolean): Record<string, OutputFile> {
  const kubeconfig = embed
    ? embeddedKubeconfig(bundle)
    : renderKubeconfig({
        name: bundle.name,
        server: bundle.server,
        certificateAuthority: { file: FILE_NAMES.ca },
        credential: { clientCertificate: { file: FILE_NAMES.cert }, clientKey: { file: FILE_NAMES.key } },
      });
  return {
    [FILE_NAMES.cert]: { content: bundle.certPem, mode: 0o644 },
    [FILE_NAMES.key]: { content: bundle.keyPem, mode: 0o600 },
    [FILE_NAMES.ca]: { content: bundle.caPem, mode: 0o644 },
    [FILE_NAMES.kubeconfig]: { content: kubeconfig, mode: embed ? 0o600 : 0o644 },
  };
}
