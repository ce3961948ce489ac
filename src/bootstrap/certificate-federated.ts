// `bootstrap --credential certificate --bootstrap-with federated`: a certificate target whose sidecars create
// their first CSR (and any after an expiry) with the pod's own source ServiceAccount token instead of a
// bootstrap token. The trust of the source's issuer and the source's bootstrap Secret (server and CA only) are
// what `--credential federated` sets up (federated.ts, reused); added here: the CSR requester RBAC of the mapped
// users and what the approver's policy and the sidecar's target need.
import { federatedBootstrapReport, federatedBootstrapTargetObjects } from '../core/bootstrap/certificate-federated.ts';
import { bootstrapFederated, type FederatedOptions } from './federated.ts';
import type { Clusters } from './mode.ts';

export async function bootstrapCertificateFederated(
  options: Omit<FederatedOptions, 'trustFor' | 'clusterRoles'>,
  clusters: Clusters,
  endpoint: Parameters<typeof bootstrapFederated>[2],
): Promise<number> {
  return bootstrapFederated(
    {
      ...options,
      // The certificate's identity is what the agent is granted, not the bootstrap user.
      clusterRoles: [],
      trustFor: {
        targetObjects: (users) => federatedBootstrapTargetObjects(options.source, users),
        report: (users) =>
          federatedBootstrapReport({
            source: options.source,
            audience: options.audience,
            users,
            serviceAccounts: options.serviceAccounts,
          }),
      },
    },
    clusters,
    endpoint,
  );
}
