// `kubeconfig-rotator credential`: the exec credential plugin client-go runs. Reads the credential a sidecar
// published (a directory sink's current version, or a Secret sink through the pod's in-cluster credentials),
// prints one ExecCredential on stdout, and exits. Run on every credential refresh of every consumer, so it loads
// no logger, metrics or client-node: the pure part is src/core/exec-credential; this is only its I/O.
import { open, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fromDirectoryFiles, ROTATION_FILE } from '../core/exec-credential/published.ts';
import type { SecretObject } from '../core/exec-credential/secret.ts';
import {
  CredentialUnavailableError,
  describeSource,
  ExecUsageError,
  execRequest,
  renderExecCredential,
  type CredentialSource,
  type PublishedCredential,
  type SourceFlags,
} from '../core/exec-credential/render.ts';

// A published file is a certificate, a key, a token or a line of JSON: anything larger is not one.
const MAX_FILE_BYTES = 256 * 1024;
// client-go waits for the plugin without a bound: the Secret read must end well before a caller gives up.
export const SECRET_READ_TIMEOUT_MS = 10_000;
const DATA_LINK = '..data';
const VERSION_DIR = /^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.[0-9a-f]+$/;
const DIRECTORY_FILES = ['tls.crt', 'tls.key', 'token', ROTATION_FILE];

export interface CredentialOptions extends SourceFlags {
  /** The source cluster's kubeconfig for a Secret; unset: in-cluster, then $KUBECONFIG. */
  readonly kubeconfig?: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  readonly now?: () => number;
}

/** 0: an ExecCredential printed; 1: no credential to hand out (message on stderr); 2: bad usage. */
export async function runCredential(options: CredentialOptions): Promise<number> {
  const fail = (code: number, message: string) => {
    options.stderr.write(`kubeconfig-rotator credential: ${message}\n`);
    return code;
  };
  try {
    const request = execRequest(options.env.KUBERNETES_EXEC_INFO, options);
    const published =
      request.source.kind === 'directory'
        ? await readDirectory(request.source)
        : await readSecret(request.source, options);
    options.stdout.write(renderExecCredential(request, published, (options.now ?? Date.now)()));
    return 0;
  } catch (error) {
    if (error instanceof ExecUsageError) return fail(2, error.problems.join('\n  '));
    if (error instanceof CredentialUnavailableError) return fail(1, error.message);
    // Never the error's cause chain or a response body: only our own message reaches stderr.
    return fail(1, error instanceof Error ? error.message : 'failed');
  }
}

async function readDirectory(source: CredentialSource & { kind: 'directory' }): Promise<PublishedCredential> {
  const version = await readlink(join(source.path, DATA_LINK)).catch(() => undefined);
  if (version === undefined || !VERSION_DIR.test(version))
    throw new CredentialUnavailableError(
      `no credential published yet in ${describeSource(source)} (no ${DATA_LINK} link): is its sidecar running, ` +
        'and is the directory mounted here?',
    );
  const files: Record<string, string> = {};
  for (const name of DIRECTORY_FILES) {
    const content = await readBounded(join(source.path, version, name));
    if (content !== undefined) files[name] = content;
  }
  return fromDirectoryFiles(source, files);
}

/** A file's text, or undefined when it is absent; a file over the bound is an error, not read. */
async function readBounded(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CredentialUnavailableError(`${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  });
  if (handle === undefined) return undefined;
  try {
    const buffer = Buffer.alloc(MAX_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_FILE_BYTES)
        throw new CredentialUnavailableError(`${path} is over ${String(MAX_FILE_BYTES)} bytes`);
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

async function readSecret(
  source: CredentialSource & { kind: 'secret' },
  options: CredentialOptions,
): Promise<PublishedCredential> {
  // Loaded only for a Secret source: a directory source never pays for the client.
  const [{ loadClientConfig }, { createKubeClient }, { httpStatus, kubeStatus }, { fromSecret }] = await Promise.all([
    import('../io/kube/load-client-config.ts'),
    import('../io/kube/rest.ts'),
    import('../io/kube/errors.ts'),
    import('../core/exec-credential/secret.ts'),
  ]);
  const where = describeSource(source);
  let client: ReturnType<typeof createKubeClient>;
  try {
    client = createKubeClient(loadClientConfig(options.kubeconfig, { env: options.env }), {
      userAgent: 'kubeconfig-rotator-credential',
    });
  } catch (error) {
    throw new CredentialUnavailableError(
      `${where} not readable: no credentials for the source cluster (${(error as Error).message})`,
    );
  }
  const deadline = AbortSignal.timeout(SECRET_READ_TIMEOUT_MS);
  try {
    const path = `/api/v1/namespaces/${encodeURIComponent(source.namespace)}/secrets/${encodeURIComponent(source.name)}`;
    const secret = await client.request<SecretObject>('GET', path, { signal: deadline });
    return fromSecret(source, secret);
  } catch (error) {
    if (error instanceof CredentialUnavailableError) throw error;
    const code = httpStatus(error);
    if (code === 404) throw new CredentialUnavailableError(`no credential published yet: ${where} does not exist`);
    if (code === 401 || code === 403)
      throw new CredentialUnavailableError(
        `${where} not readable: HTTP ${String(code)} ${kubeStatus(error)?.reason ?? ''} (grant get on it to this ` +
          "pod's ServiceAccount)",
      );
    const cause =
      code !== undefined
        ? `HTTP ${String(code)}`
        : deadline.aborted
          ? `no answer within ${String(SECRET_READ_TIMEOUT_MS / 1000)} s`
          : ((error as NodeJS.ErrnoException).code ?? (error as Error).message);
    throw new CredentialUnavailableError(`${where} not readable: ${cause}`);
  } finally {
    await client.close();
  }
}
