// `kubeconfig-rotator credential`, the pure part: where to read the credential (the ExecCredential client-go
// passes in KUBERNETES_EXEC_INFO, or the command's flags), what a published credential is, and the
// ExecCredential printed for it. Its expirationTimestamp is the credential's next rotation, never later than
// its expiry: client-go keeps an exec credential until that time (or a 401), so it asks again right after
// every rotation and never sends an expired credential.
import { readCredential, type Credential } from '../credential/credential.ts';
import type { ExecExtension } from './extension.ts';
import { parseExecExtension } from './read-extension.ts';

export const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] as const;
export type ExecApiVersion = (typeof EXEC_API_VERSIONS)[number];

// A rotation that is due but not yet published (the sidecar renews a moment after its deadline, or is behind):
// the current credential is still valid, so it is handed out again, to be asked for again this much later
// rather than on every request.
export const OVERDUE_RETRY_MS = 5_000;

export type CredentialSource =
  | { readonly kind: 'directory'; readonly path: string; readonly target?: string }
  | { readonly kind: 'secret'; readonly namespace: string; readonly name: string; readonly target?: string };

export interface SourceFlags {
  readonly directory?: string | undefined;
  readonly secretNamespace?: string | undefined;
  readonly secretName?: string | undefined;
  readonly target?: string | undefined;
}

export interface ExecRequest {
  readonly apiVersion: ExecApiVersion;
  readonly source: CredentialSource;
}

/** Bad usage: exit 2, every problem listed. */
export class ExecUsageError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** The credential cannot be handed out (none published, unreadable, expired): exit 1 with this message. */
export class CredentialUnavailableError extends Error {}

type Mapping = Record<string, unknown>;
const isMapping = (value: unknown): value is Mapping =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * What to read and which ExecCredential version to answer in. Flags win over the ClusterProfile's extension
 * (spec.cluster.config), so one kubeconfig can name the source without a ClusterProfile.
 */
export function execRequest(execInfo: string | undefined, flags: SourceFlags): ExecRequest {
  const problems: string[] = [];
  let apiVersion: ExecApiVersion = 'client.authentication.k8s.io/v1';
  let extension: ExecExtension | undefined;
  if (execInfo !== undefined && execInfo !== '') {
    let info: unknown;
    try {
      info = JSON.parse(execInfo);
    } catch {
      info = undefined;
    }
    if (!isMapping(info)) problems.push('KUBERNETES_EXEC_INFO is not a JSON object');
    else {
      const version = EXEC_API_VERSIONS.find((known) => known === info.apiVersion);
      if (version === undefined)
        problems.push(
          `KUBERNETES_EXEC_INFO apiVersion ${JSON.stringify(info.apiVersion)} is not one of ${EXEC_API_VERSIONS.join(', ')}`,
        );
      else apiVersion = version;
      const cluster = isMapping(info.spec) ? info.spec.cluster : undefined;
      const config = isMapping(cluster) ? cluster.config : undefined;
      if (config !== undefined && config !== null) {
        extension = parseExecExtension(config);
        if (extension === undefined)
          problems.push(
            'KUBERNETES_EXEC_INFO spec.cluster.config (the ClusterProfile extension client.authentication.k8s.io/exec) ' +
              'must be { "directory": "/abs/path" } or { "secret": { "namespace": "...", "name": "..." } }',
          );
      }
    }
  }
  const fromFlags = flagSource(flags, problems);
  const source = fromFlags ?? (extension === undefined ? undefined : extensionSource(extension));
  if (source === undefined && problems.length === 0)
    problems.push(
      'no credential source: give --directory DIR or --secret-namespace NS --secret-name NAME, or run it from a ' +
        'ClusterProfile access provider with provideClusterInfo: true',
    );
  if (problems.length > 0 || source === undefined) throw new ExecUsageError(problems);
  return { apiVersion, source };
}

function flagSource(flags: SourceFlags, problems: string[]): CredentialSource | undefined {
  const target = flags.target === undefined ? {} : { target: flags.target };
  const secretGiven = flags.secretNamespace !== undefined || flags.secretName !== undefined;
  if (flags.directory !== undefined && secretGiven) {
    problems.push('--directory and --secret-namespace/--secret-name exclude each other');
    return undefined;
  }
  if (flags.directory !== undefined) {
    if (!flags.directory.startsWith('/')) problems.push('--directory must be an absolute path');
    return { kind: 'directory', path: flags.directory, ...target };
  }
  if (!secretGiven) return undefined;
  if (flags.secretNamespace === undefined || flags.secretNamespace === '')
    problems.push('--secret-namespace is required');
  if (flags.secretName === undefined || flags.secretName === '') problems.push('--secret-name is required');
  return { kind: 'secret', namespace: flags.secretNamespace ?? '', name: flags.secretName ?? '', ...target };
}

function extensionSource(extension: ExecExtension): CredentialSource {
  const target = extension.target === undefined ? {} : { target: extension.target };
  return 'directory' in extension
    ? { kind: 'directory', path: extension.directory, ...target }
    : { kind: 'secret', namespace: extension.secret.namespace, name: extension.secret.name, ...target };
}

/** How messages name a source: "directory /x (target east)". */
export function describeSource(source: CredentialSource): string {
  const where = source.kind === 'directory' ? `directory ${source.path}` : `Secret ${source.namespace}/${source.name}`;
  return source.target === undefined ? where : `${where} (target ${source.target})`;
}

export interface PublishedCredential {
  readonly credential: Credential;
  /** When the sidecar will renew it (ms since the epoch), as the sink recorded it. */
  readonly nextRotation?: number;
}

/** When client-go must ask again: the next rotation, not past the expiry; soon, when the rotation is overdue. */
export function expirationOf(nextRotation: number | undefined, notAfter: number, now: number): number {
  const wanted = nextRotation === undefined || nextRotation > now ? (nextRotation ?? notAfter) : now + OVERDUE_RETRY_MS;
  return Math.min(wanted, notAfter);
}

/** The ExecCredential JSON (one line) for a published credential; throws CredentialUnavailableError. */
export function renderExecCredential(request: ExecRequest, published: PublishedCredential, now: number): string {
  let notAfter: number;
  try {
    notAfter = readCredential(published.credential).notAfter;
  } catch (error) {
    throw new CredentialUnavailableError(
      `the credential in ${describeSource(request.source)} cannot be read: ${(error as Error).message}`,
      { cause: error },
    );
  }
  if (notAfter <= now)
    throw new CredentialUnavailableError(
      `the credential in ${describeSource(request.source)} expired at ${new Date(notAfter).toISOString()} ` +
        '(the sidecar has not renewed it: see its log and /readyz)',
    );
  const credential = published.credential;
  const status = {
    ...('token' in credential
      ? { token: credential.token }
      : { clientCertificateData: credential.certPem, clientKeyData: credential.keyPem }),
    expirationTimestamp: rfc3339Seconds(expirationOf(published.nextRotation, notAfter, now)),
  };
  return `${JSON.stringify({ apiVersion: request.apiVersion, kind: 'ExecCredential', status })}\n`;
}

/** metav1.Time's form; rounded down, so client-go never holds a credential past the moment. */
function rfc3339Seconds(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
