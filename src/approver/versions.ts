// At start, the cluster's Kubernetes release against what the policies need (core/kube-version.ts): a policy
// that requires the renewal proof on a cluster that records no credential-id would deny every renewal, so the
// approver refuses to start and says which policy and why, rather than denying renewals one by one later. A
// cluster that does not answer goes unchecked: the informer reports its reachability as always.
import { renewalProofProblems } from '../core/kube-version.ts';
import type { PolicyFile } from '../core/policy/schema.ts';
import type { KubeClient } from '../io/kube/rest.ts';
import { serverVersion } from '../io/kube/version.ts';

/** The policies' version problems as problem lines ("  policies[0] (name).renewal: ..."); empty when none. */
export async function policyVersionProblems(client: KubeClient, file: PolicyFile): Promise<string[]> {
  const version = await serverVersion(client);
  return version === undefined ? [] : renewalProofProblems(file.policies, version).map((problem) => `  ${problem}\n`);
}
