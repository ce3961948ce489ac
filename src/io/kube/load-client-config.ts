// Loading the ClientConfig the in-cluster programs' API client (rest.ts) talks to their cluster with: an explicit
// kubeconfig, or, when none is given, the in-cluster ServiceAccount, then $KUBECONFIG, then ~/.kube/config
// (load-kubeconfig.ts loads client-node's KubeConfig for the operator's commands).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { inClusterConfig, parseClientConfig, type ClientConfig } from '../../core/kubeconfig/client-config.ts';

export class KubeConfigError extends Error {}

export const SERVICE_ACCOUNT_DIRECTORY = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ClientConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where the in-cluster token, CA and namespace are (tests point it elsewhere). */
  readonly serviceAccountDirectory?: string;
}

/** Throws KubeConfigError naming the kubeconfig (and the field) when it cannot be used. */
export function loadClientConfig(path: string | undefined, sources: ClientConfigSources): ClientConfig {
  if (path !== undefined) return fromFile(path);
  const directory = sources.serviceAccountDirectory ?? SERVICE_ACCOUNT_DIRECTORY;
  const inCluster = inClusterConfig(sources.env, directory, readNamespace(directory));
  if (inCluster !== undefined) return inCluster;
  const fromEnv = sources.env.KUBECONFIG?.split(delimiter).find((entry) => entry !== '');
  return fromFile(fromEnv ?? join(homedir(), '.kube', 'config'));
}

function fromFile(path: string): ClientConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new KubeConfigError(
      missing ? `kubeconfig ${path} does not exist` : `kubeconfig ${path} cannot be read: ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    return parseClientConfig(text, dirname(path));
  } catch (error) {
    throw new KubeConfigError(`kubeconfig ${path}: ${(error as Error).message}`, { cause: error });
  }
}

function readNamespace(directory: string): string | undefined {
  try {
    return readFileSync(join(directory, 'namespace'), 'utf8').trim();
  } catch {
    return undefined;
  }
}
