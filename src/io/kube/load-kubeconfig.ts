// Loading the @kubernetes/client-node KubeConfig an operator's command (bootstrap, revoke, check, status --secret),
// run from a person's machine, talks to the API with: an explicit file, or what client-node's loadFromDefault finds
// when none is given; optionally a context other than the current one. client-node reads whatever a person's kubeconfig
// holds (exec plugins, auth providers, proxies); the in-cluster programs load theirs with load-client-config.ts.
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeConfigError } from './load-client-config.ts';

export { KubeConfigError };

export function loadKubeConfig(path: string | undefined, context?: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  try {
    if (path === undefined) kubeConfig.loadFromDefault();
    else {
      if (!existsSync(path)) throw new KubeConfigError(`kubeconfig ${path} does not exist`);
      kubeConfig.loadFromFile(path);
    }
  } catch (error) {
    if (error instanceof KubeConfigError) throw error;
    throw new KubeConfigError(
      `kubeconfig ${path ?? '(default)'} cannot be loaded: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (context !== undefined) {
    if (kubeConfig.getContextObject(context) === null)
      throw new KubeConfigError(`kubeconfig ${path ?? '(default)'} has no context "${context}"`);
    kubeConfig.setCurrentContext(context);
  }
  if (kubeConfig.getCurrentCluster() === null) {
    const missing =
      context === undefined
        ? 'has no current cluster (set current-context)'
        : `has no cluster for context "${context}"`;
    throw new KubeConfigError(`kubeconfig ${path ?? '(default)'} ${missing}`);
  }
  return kubeConfig;
}
