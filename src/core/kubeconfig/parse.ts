// Reading the parts of a kubeconfig that say where and as whom it connects (current context only).
import { parse } from 'yaml';
import type { PemSource } from './render.ts';

export interface ParsedKubeconfig {
  readonly context: string;
  readonly server: string;
  readonly tlsServerName?: string;
  readonly certificateAuthority?: PemSource;
  readonly clientCertificate?: PemSource;
  readonly clientKey?: PemSource;
  /** The token, inline or by path (tokenFile). */
  readonly token?: { readonly value: string } | { readonly file: string };
}

export class KubeconfigParseError extends Error {}

type Entries = {
  name?: unknown;
  cluster?: Record<string, unknown>;
  user?: Record<string, unknown>;
  context?: Record<string, unknown>;
}[];

function pemSource(section: Record<string, unknown> | undefined, field: string): PemSource | undefined {
  const data = section?.[`${field}-data`];
  if (typeof data === 'string' && data !== '') return { pem: Buffer.from(data, 'base64').toString('utf8') };
  const file = section?.[field];
  return typeof file === 'string' && file !== '' ? { file } : undefined;
}

/** The kubeconfig's top-level mapping; throws KubeconfigParseError when the text is not one. */
export function kubeconfigDocument(text: string): Record<string, unknown> {
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new KubeconfigParseError(
      `not YAML: ${error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error)}`,
      { cause: error },
    );
  }
  if (typeof document !== 'object' || document === null || Array.isArray(document))
    throw new KubeconfigParseError('not a kubeconfig (no mapping at the top)');
  return document as Record<string, unknown>;
}

export function parseKubeconfig(text: string): ParsedKubeconfig {
  const config = kubeconfigDocument(text);
  const find = (list: string, name: unknown) =>
    (Array.isArray(config[list]) ? (config[list] as Entries) : []).find((entry) => entry.name === name);
  const contextName = config['current-context'];
  if (typeof contextName !== 'string' || contextName === '')
    throw new KubeconfigParseError('current-context is not set');
  const context = find('contexts', contextName)?.context;
  if (context === undefined) throw new KubeconfigParseError(`context "${contextName}" does not exist`);
  const cluster = find('clusters', context.cluster)?.cluster;
  if (typeof cluster?.server !== 'string')
    throw new KubeconfigParseError(`cluster of context "${contextName}" has no server`);
  const user = find('users', context.user)?.user;
  const certificateAuthority = pemSource(cluster, 'certificate-authority');
  const clientCertificate = pemSource(user, 'client-certificate');
  const clientKey = pemSource(user, 'client-key');
  const tlsServerName = cluster['tls-server-name'];
  return {
    context: contextName,
    server: cluster.server,
    ...(typeof tlsServerName === 'string' && tlsServerName !== '' ? { tlsServerName } : {}),
    ...(certificateAuthority === undefined ? {} : { certificateAuthority }),
    ...(clientCertificate === undefined ? {} : { clientCertificate }),
    ...(clientKey === undefined ? {} : { clientKey }),
    ...tokenOf(user),
  };
}

function tokenOf(user: Record<string, unknown> | undefined): Pick<ParsedKubeconfig, 'token'> {
  if (typeof user?.token === 'string' && user.token !== '') return { token: { value: user.token } };
  if (typeof user?.tokenFile === 'string' && user.tokenFile !== '') return { token: { file: user.tokenFile } };
  return {};
}
