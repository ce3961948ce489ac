// The operator's `check` flags, as run.ts and the group modules beside it read them.
import type { ClusterPair } from '../bootstrap/kube.ts';
import type { CheckOutputOptions } from './output.ts';

export interface CheckOptions extends ClusterPair, CheckOutputOptions {
  readonly credential: string;
  /** Before bootstrap: what the clusters must offer, not what bootstrap and the charts create. */
  readonly pre: boolean;
  /** The source namespace of the bootstrap Secret (bootstrap --namespace). */
  readonly namespace: string;
  readonly secretName: string | undefined;
  /** Token targets: the namespace of the source's ServiceAccount (bootstrap --target-namespace). */
  readonly targetNamespace: string;
  readonly approverNamespace: string;
  readonly approverName: string;
  /** The identity the sidecar asks for; with it, the policy is evaluated for a whole first certificate. */
  readonly commonName: string | undefined;
  readonly organizations: readonly string[];
  /** Federated: the source ServiceAccount (NAMESPACE/NAME) whose token the target must accept. */
  readonly serviceAccount: string | undefined;
  readonly audience: string | undefined;
  readonly userPrefix: string | undefined;
  /** Where creating and approving one CSR is not allowed: the signer check is a warning, not run. */
  readonly skipSigner: boolean;
}
