// What every mode of `kubeconfig-rotator bootstrap` is given (run.ts resolves it once), and the --dry-run
// printing of a plan that the certificate and token modes share.
import type { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { BOOTSTRAP_SECRET_KEY, type BootstrapPlan } from '../core/bootstrap/plan.ts';

/** The operator's admin access to both clusters. */
export interface Clusters {
  readonly target: KubeConfig;
  readonly source: KubeConfig;
}

/** The target API as the source's pods reach it, as their bootstrap kubeconfig names it. */
export interface TargetEndpoint {
  readonly server: string;
  readonly caPem: string;
  /** The name the target's certificate is checked against (a load balancer, a tunnel): every client needs it. */
  readonly tlsServerName: string | undefined;
}

/** What every mode needs besides its own settings. */
export interface ModeRun {
  readonly source: string;
  readonly target: string;
  /** The source namespace of the bootstrap Secret. */
  readonly namespace: string;
  readonly secretName: string;
  readonly endpoint: TargetEndpoint;
  readonly dryRun: boolean;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

/** The plan, its credentials redacted; the server the bootstrap kubeconfig names is shown (a URL is no secret). */
export function printPlan(
  out: NodeJS.WritableStream,
  plan: BootstrapPlan,
  clusters: Clusters,
  bootstrap: { readonly server: string; readonly tlsServerName: string | undefined },
): void {
  out.write(`# target cluster (${clusters.target.getCurrentCluster()?.server ?? '?'})\n`);
  for (const object of plan.target) out.write(`---\n${stringify(object)}`);
  out.write(`# source cluster (${clusters.source.getCurrentCluster()?.server ?? '?'})\n`);
  out.write(
    `# the bootstrap kubeconfig (key ${BOOTSTRAP_SECRET_KEY}) sends the sidecar to server ${bootstrap.server}` +
      ` with the target CA${bootstrap.tlsServerName === undefined ? '' : `, checking its certificate for ${bootstrap.tlsServerName} (the target context's tls-server-name)`}` +
      ' (--server to change it); its token is redacted\n',
  );
  for (const object of plan.source) out.write(`---\n${stringify(object)}`);
}
