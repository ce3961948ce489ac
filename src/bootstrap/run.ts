// `kubeconfig-rotator bootstrap`: with admin access to a target and a source cluster for that moment, make
// the short-lived bootstrap credential a source's sidecar needs for its first certificate (or token). Checks
// the flags (core/bootstrap/flags.ts) and the kubeconfigs, listing every problem at once (exit 2), then runs
// the one mode they ask for: certificate.ts, certificate-federated.ts, token.ts or federated.ts. Each applies
// its plan with server-side apply (a re-run converges). Prints no secret.
import { checkBootstrapFlags, type BootstrapFlags, type BootstrapMode } from '../core/bootstrap/flags.ts';
import { bootstrapCertificate } from './certificate.ts';
import { bootstrapCertificateFederated } from './certificate-federated.ts';
import { bootstrapFederated } from './federated.ts';
import { BootstrapError, clusterCa, loadContext, writeProblems, type ClusterPair } from './kube.ts';
import type { Clusters, ModeRun } from './mode.ts';
import { bootstrapToken } from './token.ts';

export interface BootstrapOptions extends ClusterPair, BootstrapFlags {
  readonly secretName: string | undefined;
  readonly server: string | undefined;
  readonly dryRun: boolean;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

export async function runBootstrap(options: BootstrapOptions): Promise<number> {
  const flags = checkBootstrapFlags(options);
  const problems = flags.ok ? [] : [...flags.problems];
  const clusters = loadClusters(options, problems);
  if (!flags.ok || clusters === undefined) {
    writeProblems(options.err, 'bootstrap', problems);
    return 2;
  }
  try {
    return await runMode(flags.mode, modeRun(options, clusters), clusters);
  } catch (error) {
    if (!(error instanceof BootstrapError)) throw error;
    options.err.write(`kubeconfig-rotator bootstrap: ${error.message}\n`);
    return 1;
  }
}

/** What every mode is given: the names, the Secret's name and the target as the bootstrap kubeconfig names it. */
function modeRun(options: BootstrapOptions, clusters: Clusters & { readonly caPem: string }): ModeRun {
  const cluster = clusters.target.getCurrentCluster();
  return {
    source: options.source,
    target: options.target,
    namespace: options.namespace,
    secretName: options.secretName ?? `kubeconfig-rotator-bootstrap-${options.target}`,
    endpoint: {
      server: options.server ?? cluster?.server ?? '',
      caPem: clusters.caPem,
      // The name the target's certificate is checked against (a load balancer, a tunnel): every client needs it.
      tlsServerName: cluster?.tlsServerName === '' ? undefined : cluster?.tlsServerName,
    },
    dryRun: options.dryRun,
    out: options.out,
    err: options.err,
  };
}

function runMode(mode: BootstrapMode, run: ModeRun, clusters: Clusters): Promise<number> {
  switch (mode.kind) {
    case 'certificate':
      return bootstrapCertificate(run, clusters, mode.ttlMs);
    case 'token':
      return bootstrapToken(run, clusters, mode);
    case 'certificate-federated':
    case 'federated': {
      const options = { ...mode.federation, out: run.out, secretName: run.secretName, dryRun: run.dryRun };
      const endpoint = { ...run.endpoint, sourceCaPem: sourceCa(clusters.source) };
      return mode.kind === 'federated'
        ? bootstrapFederated(options, clusters, endpoint)
        : bootstrapCertificateFederated(options, clusters, endpoint);
    }
  }
}

/** Both clusters and the target's CA; each problem loading them is added to `problems`. */
function loadClusters(
  options: BootstrapOptions,
  problems: string[],
): (Clusters & { readonly caPem: string }) | undefined {
  let target;
  let caPem;
  let source;
  try {
    target = loadContext(options.targetKubeconfig, options.targetContext, 'target');
    caPem = clusterCa(target, 'target');
  } catch (error) {
    problems.push((error as Error).message);
  }
  try {
    source = loadContext(options.sourceKubeconfig, options.sourceContext, 'source');
  } catch (error) {
    problems.push((error as Error).message);
  }
  return target === undefined || caPem === undefined || source === undefined ? undefined : { target, source, caPem };
}

/** The source's CA, which a federated target verifies a self-managed source's issuer with; none when unset. */
function sourceCa(source: Clusters['source']): string | undefined {
  try {
    return clusterCa(source, 'source');
  } catch {
    return undefined;
  }
}
