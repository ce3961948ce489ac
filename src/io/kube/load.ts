// Loading the KubeConfig a command talks to the API with: an explicit file, or the in-cluster
// ServiceAccount (or $KUBECONFIG / ~/.kube/config) when none is given.
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

export class KubeConfigError extends Error {}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    if (path === undefined) kubeConfig.loadFromDefault();
    else {
      if (!existsSync(path)) throw new KubeConfigError(`kubeconfig ${path} does not exist`);
      kubeConfig.loadFromFile(path);
    }
  } catch (error) {
    if (error instanceof KubeConfigError) throw error;
    throw new KubeConfigError(`kubeconfig ${path ?? '(default)'} cannot be loaded: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new KubeConfigError(`kubeconfig ${path ?? '(default)'} has no current cluster (set current-context)`);
  return kubeConfig;
}
