// What the sidecar's own API client (io/kube/rest.ts) needs from a kubeconfig: the cluster's address and
// TLS settings and the user's credential, for the current context. Every field the client cannot honour is
// refused by name, never ignored: a proxy or an auth provider silently dropped would connect differently.
// Also the pure parts of credential resolution: exec plugin output and when a cached credential is stale.
import { isAbsolute, join } from 'node:path/posix';
import { kubeconfigDocument } from './parse.ts';
import type { PemSource } from './render.ts';

export interface ExecConfig {
  readonly apiVersion: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: readonly { readonly name: string; readonly value: string }[];
  readonly provideClusterInfo: boolean;
}

export interface UserConfig {
  readonly clientCertificate?: PemSource;
  readonly clientKey?: PemSource;
  readonly token?: { readonly value: string } | { readonly file: string };
  readonly exec?: ExecConfig;
}

export interface ClientConfig {
  readonly server: string;
  readonly certificateAuthority?: PemSource;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName?: string;
  readonly user: UserConfig;
  /** The in-cluster ServiceAccount's namespace; undefined for a kubeconfig file. */
  readonly namespace?: string;
  /** Where the cluster and user are in the file, for messages about them (a kubeconfig file only). */
  readonly fields?: { readonly cluster: string; readonly user: string };
}

export interface ParseOptions {
  /** A bootstrap kubeconfig: the target must be verified with its CA, and (unless federated) have a credential. */
  readonly bootstrap?: { readonly credentialRequired: boolean };
}

export class ClientConfigError extends Error {}

const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'];
// Fields that change nothing about how the client connects (metadata for other tools).
const CLUSTER_FIELDS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'tls-server-name',
  'extensions',
  'disable-compression',
]);
const USER_FIELDS = new Set([
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'token',
  'tokenFile',
  'exec',
  'extensions',
]);
const EXEC_FIELDS = new Set([
  'apiVersion',
  'command',
  'args',
  'env',
  'provideClusterInfo',
  'installHint',
  'interactiveMode',
]);

// Credentials that would travel in the clear over http:// (a client certificate is never sent there).
const BEARER_FIELDS = ['token', 'tokenFile', 'exec'] as const;
// The sidecar never has a terminal: a plugin that must prompt cannot work (client-go refuses it without one).
const EXEC_INTERACTIVE_MODES = ['Never', 'IfAvailable'];

type Mapping = Record<string, unknown>;
const isMapping = (value: unknown): value is Mapping =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads the current context of a kubeconfig; relative file paths are taken from `directory`. */
export function parseClientConfig(text: string, directory: string, options: ParseOptions = {}): ClientConfig {
  const document = kubeconfigDocument(text);
  const contextName = document['current-context'];
  if (typeof contextName !== 'string' || contextName === '') throw new ClientConfigError('current-context: is not set');
  const find = (list: string, name: unknown): Mapping | undefined => {
    const entries = Array.isArray(document[list]) ? (document[list] as unknown[]) : [];
    const entry = entries.find((item) => isMapping(item) && item.name === name) as Mapping | undefined;
    const body = entry?.[list.slice(0, -1)];
    return isMapping(body) ? body : undefined;
  };
  const context = find('contexts', contextName);
  if (context === undefined)
    throw new ClientConfigError(`current-context: names context "${contextName}", which does not exist`);
  const cluster = find('clusters', context.cluster);
  if (cluster === undefined)
    throw new ClientConfigError(`contexts[${contextName}].context.cluster: names a cluster that does not exist`);
  const user = context.user === undefined ? {} : find('users', context.user);
  if (user === undefined)
    throw new ClientConfigError(`contexts[${contextName}].context.user: names a user that does not exist`);
  const clusterField = `clusters[${String(context.cluster)}].cluster`;
  const userField = `users[${String(context.user)}].user`;
  // Plain http only where nothing secret travels in the clear: a local proxy (kubectl proxy) of the source.
  const scheme = options.bootstrap === undefined ? /^https?:\/\// : /^https:\/\//;
  if (typeof cluster.server !== 'string' || !scheme.test(cluster.server))
    throw new ClientConfigError(
      `${clusterField}.server: must be an ${options.bootstrap === undefined ? 'http(s)' : 'https'} URL, got "${String(cluster.server)}"`,
    );
  if (options.bootstrap !== undefined) checkBootstrap(cluster, user, { clusterField, userField }, options.bootstrap);
  refuseUnknown(cluster, CLUSTER_FIELDS, clusterField);
  refuseUnknown(user, USER_FIELDS, userField);
  const certificateAuthority = pemSource(cluster, 'certificate-authority', directory);
  // client-go refuses this too: which of the two was meant cannot be known.
  if (cluster['insecure-skip-tls-verify'] === true && certificateAuthority !== undefined)
    throw new ClientConfigError(
      `${clusterField}.insecure-skip-tls-verify: cannot be set together with a certificate-authority`,
    );
  const bearer = BEARER_FIELDS.find((field) => user[field] !== undefined && user[field] !== '');
  if (bearer !== undefined && cluster.server.startsWith('http://'))
    throw new ClientConfigError(
      `${userField}.${bearer}: not sent over http:// (${clusterField}.server), where anyone on the path could read it`,
    );
  const tlsServerName = cluster['tls-server-name'];
  return {
    server: cluster.server,
    ...(certificateAuthority === undefined ? {} : { certificateAuthority }),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(typeof tlsServerName === 'string' && tlsServerName !== '' ? { tlsServerName } : {}),
    user: userConfig(user, userField, directory),
    fields: { cluster: clusterField, user: userField },
  };
}

function checkBootstrap(
  cluster: Mapping,
  user: Mapping,
  fields: { readonly clusterField: string; readonly userField: string },
  bootstrap: NonNullable<ParseOptions['bootstrap']>,
): void {
  if (cluster['insecure-skip-tls-verify'] === true)
    throw new ClientConfigError(
      `${fields.clusterField}.insecure-skip-tls-verify: must not be set: the target must be verified with its CA`,
    );
  const hasCredential = ['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'exec'].some(
    (field) => user[field] !== undefined && user[field] !== '',
  );
  // A federated target's needs only the server and CA: its tokens come from the source.
  if (!hasCredential && bootstrap.credentialRequired)
    throw new ClientConfigError(
      `${fields.userField}: has no credential (token, tokenFile, client certificate or exec)`,
    );
}

function refuseUnknown(section: Mapping, known: ReadonlySet<string>, field: string): void {
  const unknown = Object.keys(section).filter((key) => !known.has(key));
  if (unknown.length > 0)
    throw new ClientConfigError(`${field}.${unknown.sort().join(', ')}: not supported by the sidecar's API client`);
}

// As kubectl does: a relative path in a kubeconfig is relative to the kubeconfig's directory.
const resolvePath = (directory: string, path: string) => (isAbsolute(path) ? path : join(directory, path));

function pemSource(section: Mapping, field: string, directory: string): PemSource | undefined {
  const data = section[`${field}-data`];
  if (typeof data === 'string' && data !== '') return { pem: Buffer.from(data, 'base64').toString('utf8') };
  const file = section[field];
  return typeof file === 'string' && file !== '' ? { file: resolvePath(directory, file) } : undefined;
}

function userConfig(user: Mapping, field: string, directory: string): UserConfig {
  const clientCertificate = pemSource(user, 'client-certificate', directory);
  const clientKey = pemSource(user, 'client-key', directory);
  if ((clientCertificate === undefined) !== (clientKey === undefined))
    throw new ClientConfigError(`${field}: a client certificate needs both client-certificate and client-key`);
  // client-go's precedence: a tokenFile over an inline token (it re-reads the file), and a static token or
  // client certificate over an exec plugin, which is then not run at all.
  const token =
    typeof user.tokenFile === 'string' && user.tokenFile !== ''
      ? { file: resolvePath(directory, user.tokenFile) }
      : typeof user.token === 'string' && user.token !== ''
        ? { value: user.token }
        : undefined;
  const exec = user.exec === undefined ? undefined : execConfig(user.exec, `${field}.exec`, directory);
  const staticCredential = token !== undefined || clientCertificate !== undefined;
  return {
    ...(clientCertificate === undefined ? {} : { clientCertificate }),
    ...(clientKey === undefined ? {} : { clientKey }),
    ...(token === undefined ? {} : { token }),
    ...(exec === undefined || staticCredential ? {} : { exec }),
  };
}

function execConfig(exec: unknown, field: string, directory: string): ExecConfig {
  if (!isMapping(exec)) throw new ClientConfigError(`${field}: must be a mapping`);
  refuseUnknown(exec, EXEC_FIELDS, field);
  if (typeof exec.apiVersion !== 'string' || !EXEC_API_VERSIONS.includes(exec.apiVersion))
    throw new ClientConfigError(`${field}.apiVersion: must be one of ${EXEC_API_VERSIONS.join(', ')}`);
  if (typeof exec.command !== 'string' || exec.command === '')
    throw new ClientConfigError(`${field}.command: is not set`);
  const mode = typeof exec.interactiveMode === 'string' ? exec.interactiveMode : JSON.stringify(exec.interactiveMode);
  if (exec.interactiveMode !== undefined && mode !== '' && !EXEC_INTERACTIVE_MODES.includes(mode))
    throw new ClientConfigError(
      mode === 'Always'
        ? `${field}.interactiveMode: Always: the plugin would need a terminal, which the sidecar never has`
        : `${field}.interactiveMode: must be one of ${EXEC_INTERACTIVE_MODES.join(', ')}, got ${mode}`,
    );
  const args = exec.args ?? [];
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string'))
    throw new ClientConfigError(`${field}.args: must be a list of strings`);
  const env = exec.env ?? [];
  const valid = (entry: unknown) =>
    isMapping(entry) && typeof entry.name === 'string' && typeof entry.value === 'string';
  if (!Array.isArray(env) || !env.every(valid))
    throw new ClientConfigError(`${field}.env: must be a list of {name, value}`);
  return {
    apiVersion: exec.apiVersion,
    // As client-go: a command with a slash is a path, relative to the kubeconfig's directory; a bare name is
    // looked up in PATH.
    command: exec.command.includes('/') ? resolvePath(directory, exec.command) : exec.command,
    args: args,
    env: env as { name: string; value: string }[],
    provideClusterInfo: exec.provideClusterInfo === true,
  };
}

/** A kubeconfig for one credential against one cluster (the target's current credential). */
export function clientConfigFor(
  endpoint: { readonly server: string; readonly caPem: string; readonly tlsServerName?: string | undefined },
  credential: { readonly token: string } | { readonly certPem: string; readonly keyPem: string },
): ClientConfig {
  return {
    server: endpoint.server,
    certificateAuthority: { pem: endpoint.caPem },
    insecureSkipTlsVerify: false,
    ...(endpoint.tlsServerName === undefined ? {} : { tlsServerName: endpoint.tlsServerName }),
    user:
      'token' in credential
        ? { token: { value: credential.token } }
        : { clientCertificate: { pem: credential.certPem }, clientKey: { pem: credential.keyPem } },
  };
}

/** The in-cluster configuration, as client-go's rest.InClusterConfig builds it from the pod's environment. */
export function inClusterConfig(
  env: Readonly<Record<string, string | undefined>>,
  serviceAccountDirectory: string,
  namespace: string | undefined,
): ClientConfig | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (host === undefined || host === '' || port === undefined || port === '') return undefined;
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    certificateAuthority: { file: join(serviceAccountDirectory, 'ca.crt') },
    insecureSkipTlsVerify: false,
    // A projected token that the kubelet rotates: re-read like a tokenFile.
    user: { token: { file: join(serviceAccountDirectory, 'token') } },
    ...(namespace === undefined ? {} : { namespace }),
  };
}

/** What an exec plugin gave: a token or a client certificate, until `expiresAt` (epoch ms) when set. */
export interface ExecCredential {
  readonly token?: string;
  readonly clientCertificatePem?: string;
  readonly clientKeyPem?: string;
  readonly expiresAt?: number;
}

/** Reads a plugin's ExecCredential output (the secrets in it never reach an error message). */
export function parseExecCredential(text: string, apiVersion: string): ExecCredential {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    // JSON.parse's message quotes the text it read: only where it failed is kept.
    const where = /position \d+/.exec((error as Error).message)?.[0];
    throw new ClientConfigError('the exec plugin printed something other than JSON', {
      cause: new SyntaxError(`invalid JSON${where === undefined ? '' : ` at ${where}`}`),
    });
  }
  if (!isMapping(document) || document.kind !== 'ExecCredential' || document.apiVersion !== apiVersion)
    throw new ClientConfigError(`the exec plugin did not print an ExecCredential of ${apiVersion}`);
  const status = isMapping(document.status) ? document.status : {};
  const text_ = (key: string) => (typeof status[key] === 'string' && status[key] !== '' ? status[key] : undefined);
  const token = text_('token');
  const clientCertificatePem = text_('clientCertificateData');
  const clientKeyPem = text_('clientKeyData');
  if (token === undefined && (clientCertificatePem === undefined || clientKeyPem === undefined))
    throw new ClientConfigError('the exec plugin gave neither a token nor a client certificate and key');
  const expiration = text_('expirationTimestamp');
  const expiresAt = expiration === undefined ? undefined : Date.parse(expiration);
  if (expiresAt !== undefined && Number.isNaN(expiresAt))
    throw new ClientConfigError('the exec plugin gave an expirationTimestamp that is not a time');
  return {
    ...(token === undefined ? {} : { token }),
    ...(clientCertificatePem === undefined ? {} : { clientCertificatePem }),
    ...(clientKeyPem === undefined ? {} : { clientKeyPem }),
    ...(expiresAt === undefined ? {} : { expiresAt }),
  };
}

/** client-go re-reads a tokenFile this often: a rotated token is used within a minute. */
export const TOKEN_FILE_REREAD_MS = 60_000;

/** Whether a cached exec credential must be replaced at `now` (no expiry: kept until the API refuses it). */
export const execCredentialStale = (credential: ExecCredential, now: number): boolean =>
  credential.expiresAt !== undefined && now >= credential.expiresAt;

/** Whether a token file read at `readAt` (monotonic ms) is due to be read again at `now`. */
export const tokenFileStale = (readAt: number, now: number): boolean => now - readAt >= TOKEN_FILE_REREAD_MS;

/** The KUBERNETES_EXEC_INFO a plugin is given (spec.cluster only when provideClusterInfo). */
export function execInfo(exec: ExecConfig, cluster: ClientConfig, caPem: string | undefined): string {
  const clusterInfo = {
    server: cluster.server,
    ...(cluster.tlsServerName === undefined ? {} : { 'tls-server-name': cluster.tlsServerName }),
    ...(cluster.insecureSkipTlsVerify ? { 'insecure-skip-tls-verify': true } : {}),
    ...(caPem === undefined ? {} : { 'certificate-authority-data': Buffer.from(caPem).toString('base64') }),
  };
  return JSON.stringify({
    apiVersion: exec.apiVersion,
    kind: 'ExecCredential',
    spec: { interactive: false, ...(exec.provideClusterInfo ? { cluster: clusterInfo } : {}) },
  });
}
