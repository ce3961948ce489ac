// What a directory sink published, as the credential plugin reads it: the files of its current version, with
// the next rotation the sidecar recorded beside them (secret.ts reads a Secret sink).
import {
  CredentialUnavailableError,
  describeSource,
  type CredentialSource,
  type PublishedCredential,
} from './render.ts';

/** A directory sink's version holds this beside the credential: the fact a Secret sink keeps in an annotation. */
export const ROTATION_FILE = 'rotation.json';

export function renderRotationFile(nextRotation: number): string {
  return `${JSON.stringify({ nextRotation: new Date(nextRotation).toISOString() })}\n`;
}

/** The next rotation a rotation file records; undefined when it is absent or unreadable (the expiry then rules). */
export function parseRotationFile(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as unknown;
    const value =
      typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>).nextRotation : undefined;
    return parseTime(value);
  } catch {
    return undefined;
  }
}

export function parseTime(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The files of a directory sink's current version (tls.crt and tls.key, or token; rotation.json). */
export function fromDirectoryFiles(
  source: CredentialSource,
  files: Readonly<Record<string, string | undefined>>,
): PublishedCredential {
  const nextRotation = parseRotationFile(files[ROTATION_FILE]);
  const at = nextRotation === undefined ? {} : { nextRotation };
  const token = files.token?.trim();
  if (token !== undefined && token !== '') return { credential: { token }, ...at };
  const certPem = files['tls.crt'];
  const keyPem = files['tls.key'];
  if (certPem !== undefined && keyPem !== undefined) return { credential: { certPem, keyPem }, ...at };
  throw new CredentialUnavailableError(
    `no credential published yet in ${describeSource(source)}: its current version holds neither tls.crt and tls.key nor token`,
  );
}
