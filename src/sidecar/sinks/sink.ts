// Where a target's credential is published. Each sink is complete on its own: a reader of any one sink sees
// either the previous set or the new one, never a mix.
import type { CredentialBundle } from '../../core/kubeconfig/bundle.ts';
import { isComplete, type Credential } from '../../core/credential/credential.ts';
import { parseKubeconfig } from '../../core/kubeconfig/parse.ts';

/** What a sink holds, read back as a whole. */
export interface StoredCredential {
  readonly credential: Credential;
  readonly caPem: string;
  /** The server its kubeconfig points at, when readable. */
  readonly server?: string;
  /** Its kubeconfig's tls-server-name, if any. */
  readonly tlsServerName?: string;
}

/** current: holds exactly the bundle; missing: holds nothing; damaged: holds something else. */
export type OutputState = 'current' | 'missing' | 'damaged';

export interface Sink {
  /** For logs and metrics, e.g. "directory /var/run/kcr/east". */
  readonly description: string;
  /** A short label for metrics: directory or secret. */
  readonly kind: 'directory' | 'secret';
  /** The complete set the sink holds, or undefined when there is none (or it is unreadable). */
  read(): Promise<StoredCredential | undefined>;
  check(bundle: CredentialBundle): Promise<OutputState>;
  /** Replaces the published set atomically; on failure the previous set stays. */
  write(bundle: CredentialBundle): Promise<void>;
  /** Calls `onChange` (debounced) when the output may have been changed by someone else. */
  watch(onChange: () => void): Promise<{ close(): Promise<void> }>;
}

/** A stored set from its files, if it is complete (a certificate with its own key, or a readable token). */
export function storedCredential(
  files: Readonly<Record<string, string | undefined>>,
  kubeconfigKey: string,
): StoredCredential | undefined {
  const { 'tls.crt': certPem, 'tls.key': keyPem, token, 'ca.crt': caPem, [kubeconfigKey]: kubeconfig } = files;
  let parsed: { server?: string; tlsServerName?: string };
  try {
    parsed = kubeconfig === undefined ? {} : parseKubeconfig(kubeconfig);
  } catch {
    parsed = {};
  }
  return verifiedCredential({
    certPem,
    keyPem,
    token,
    caPem,
    server: parsed.server,
    tlsServerName: parsed.tlsServerName,
  });
}

/** The parts as a stored set, if they are complete; a token wins over a certificate (a sink holds one kind). */
export function verifiedCredential(parts: {
  readonly certPem?: string | undefined;
  readonly keyPem?: string | undefined;
  readonly token?: string | undefined;
  readonly caPem?: string | undefined;
  readonly server?: string | undefined;
  readonly tlsServerName?: string | undefined;
}): StoredCredential | undefined {
  const { certPem, keyPem, token, caPem, server, tlsServerName } = parts;
  if (caPem === undefined) return undefined;
  const credential: Credential | undefined =
    token !== undefined ? { token } : certPem !== undefined && keyPem !== undefined ? { certPem, keyPem } : undefined;
  if (credential === undefined || !isComplete(credential)) return undefined;
  return {
    credential,
    caPem,
    ...(server === undefined ? {} : { server }),
    ...(tlsServerName === undefined ? {} : { tlsServerName }),
  };
}
