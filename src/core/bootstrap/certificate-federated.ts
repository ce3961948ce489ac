// `bootstrap --credential certificate --bootstrap-with federated`: what a certificate target needs besides the
// trust of the source's issuer (federation.ts) so that the source's ServiceAccount tokens can create the first
// CSR: the CSR requester role bound to the mapped users, the approver policy's bootstrap users for this
// source, and the sidecar target's bootstrap fields. No bootstrap token exists.
import { stringify } from 'yaml';
import { CSR_REQUESTER_ROLE, MANAGED_BY, SOURCE_LABEL, type KubeObject } from './plan.ts';
import { csrRequesterRbac } from './token.ts';
import type { ServiceAccountRef } from './federation.ts';

export const federatedBootstrapBinding = (source: string): string => `kubeconfig-rotator:federated-bootstrap:${source}`;

/** The shared CSR requester ClusterRole, and this source's binding of it to its mapped users. */
export function federatedBootstrapTargetObjects(source: string, users: readonly string[]): KubeObject[] {
  const labels = { ...MANAGED_BY, [SOURCE_LABEL]: source };
  const { clusterRole } = csrRequesterRbac(CSR_REQUESTER_ROLE, '', MANAGED_BY);
  return [
    clusterRole,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: federatedBootstrapBinding(source), labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CSR_REQUESTER_ROLE },
      subjects: users.map((name) => ({ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name })),
    },
  ];
}

export interface FederatedBootstrapReportInput {
  readonly source: string;
  readonly audience: string;
  readonly users: readonly string[];
  readonly serviceAccounts: readonly ServiceAccountRef[];
}

/** What is printed after the trust is set up: the approver's policy and the sidecar target's fields. */
export function federatedBootstrapReport(input: FederatedBootstrapReportInput): string[] {
  const [account] = input.serviceAccounts;
  const bootstrap = {
    with: 'federated',
    audiences: [input.audience],
    // One ServiceAccount: named, so the sidecar need not run as it; several: each pod's own (the default).
    ...(input.serviceAccounts.length === 1 && account !== undefined ? { serviceAccount: account } : {}),
  };
  const indent = (text: string, by: string) =>
    text
      .trimEnd()
      .split('\n')
      .map((line) => `${by}${line}`);
  return [
    `  bound ClusterRole ${CSR_REQUESTER_ROLE} (create/get/list/watch CSRs) to them (ClusterRoleBinding ${federatedBootstrapBinding(input.source)}); no bootstrap token was created`,
    `The approver's policy for source "${input.source}" (the approver chart: sources[].bootstrap) must name them as bootstrap identities:`,
    ...indent(stringify({ bootstrap: { federatedUsers: [...input.users] } }), '  '),
    "The sidecar's target (credential: certificate, its identity as that policy allows) bootstraps with:",
    ...indent(stringify({ bootstrap }), '  '),
  ];
}
