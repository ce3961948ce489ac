// At start, the cluster's Kubernetes release against what the policies need (core/kube-version.ts): a policy
// that requires the renewal proof on a cluster that records no credential-id would deny every renewal, so the
// approver refuses to start and says which policy and why, rather than denying renewals one by one later.
import { VersionApi, type KubeConfig } from '@kubernetes/client-node';
import { parseKubeVersion, renewalProofProblems, type KubeVersion } from '../core/kube-version.ts';
import type { PolicyFile } from '../core/policy/schema.ts';

// Start waits for this at most: a cluster that does not answer by then goes unchecked.
const VERSION_TIMEOUT_MS = 5_000;

/** The cluster's version; undefined when unknown (not reachable yet: the informer reports that as always). */
async function clusterVersion(kubeConfig: KubeConfig): Promise<KubeVersion | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, VERSION_TIMEOUT_MS, undefined);
  });
  try {
    const version = kubeConfig.makeApiClient(VersionApi).getCode().then(parseKubeVersion);
    return await Promise.race([version, timeout]);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** The policies' version problems as problem lines ("  policies[0] (name).renewal: ..."); empty when none. */
export async function policyVersionProblems(kubeConfig: KubeConfig, file: PolicyFile): Promise<string[]> {
  const version = await clusterVersion(kubeConfig);
  return version === undefined ? [] : renewalProofProblems(file.policies, version).map((problem) => `  ${problem}\n`);
}
