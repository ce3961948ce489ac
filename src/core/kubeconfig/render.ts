// Rendering kubeconfig files. A credential is either referenced by path (clients such as client-go re-read
// the files, so a rotation needs no restart) or embedded (a self-contained file, as a Secret holds it).
import { stringify } from 'yaml';

/** A PEM document referenced by path, or embedded. */
export type PemSource = { readonly file: string } | { readonly pem: string };

export type KubeconfigCredential =
  | { readonly clientCertificate: PemSource; readonly clientKey: PemSource }
  | { readonly token: string }
  // client-go re-reads a token file about once a minute, so a rotated token needs no restart.
  | { readonly tokenFile: string };

export interface KubeconfigSpec {
  /** Used for the cluster, user and context entries. */
  readonly name: string;
  readonly server: string;
  readonly certificateAuthority: PemSource;
  /** The name the server's certificate is checked against when it differs from the server's host (a load balancer, an IP). */
  readonly tlsServerName?: string | undefined;
  readonly credential: KubeconfigCredential;
  readonly namespace?: string;
}

function pemField(field: string, source: PemSource): Record<string, string> {
  return 'file' in source
    ? { [field]: source.file }
    : { [`${field}-data`]: Buffer.from(source.pem, 'utf8').toString('base64') };
}

export function renderKubeconfig(spec: KubeconfigSpec): string {
  const user =
    'token' in spec.credential
      ? { token: spec.credential.token }
      : 'tokenFile' in spec.credential
        ? { tokenFile: spec.credential.tokenFile }
        : {
            ...pemField('client-certificate', spec.credential.clientCertificate),
            ...pemField('client-key', spec.credential.clientKey),
          };
  const document = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: spec.name,
        cluster: {
          server: spec.server,
          ...pemField('certificate-authority', spec.certificateAuthority),
          ...(spec.tlsServerName === undefined ? {} : { 'tls-server-name': spec.tlsServerName }),
        },
      },
    ],
    users: [{ name: spec.name, user }],
    contexts: [
      {
        name: spec.name,
        context: {
          cluster: spec.name,
          user: spec.name,
          ...(spec.namespace === undefined ? {} : { namespace: spec.namespace }),
        },
      },
    ],
    'current-context': spec.name,
    preferences: {},
  };
  return stringify(document, { lineWidth: 0 });
}
