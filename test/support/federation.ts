// Federated targets in tests: a cluster of a test's own whose kube-apiserver reads a structured authentication
// configuration file (written here trusting no one: `bootstrap` adds each source to it and the apiserver
// reloads it), `bootstrap` run for one source as a user runs it, the sidecar's pod in the source (its
// ServiceAccount tokens are bound to it) and the renewal RBAC of a bootstrapped identity.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { authenticationConfiguration } from '../../src/core/bootstrap/federation.ts';
import { CSR_REQUESTER_ROLE } from '../../src/core/bootstrap/plan.ts';
import { clustersRoot } from '../../scripts/testbed/binaries.ts';
import { startClusters, type ClusterState } from '../../scripts/testbed/cluster.ts';
import { bindClusterRole } from './kube.ts';

const execute = promisify(execFile);
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

/** Starts cluster `name` with `--authentication-config=authConfig`, the file first trusting no issuer. */
export async function startFederatedCluster(name: string, authConfig: string, binDir: string): Promise<ClusterState> {
  writeFileSync(authConfig, stringify(authenticationConfiguration([])));
  const [state] = await startClusters([name], {
    binDir,
    root: clustersRoot(),
    apiserverFlags: () => [`--authentication-config=${authConfig}`],
  });
  if (state === undefined) throw new Error(`cluster ${name} did not start`);
  return state;
}

export interface FederatedBootstrap {
  /** certificate: `--credential certificate --bootstrap-with federated`; federated: `--credential federated`. */
  readonly credential: 'certificate' | 'federated';
  readonly sourceName: string;
  readonly targetName: string;
  readonly targetKubeconfig: string;
  readonly sourceKubeconfig: string;
  readonly namespace: string;
  /** NAMESPACE/NAME of the source ServiceAccount the target trusts. */
  readonly serviceAccount: string;
  readonly audience: string;
  /** The target apiserver's --authentication-config file, which bootstrap writes. */
  readonly authConfig: string;
  /** Flags after the others (e.g. --cluster-role). */
  readonly extra?: readonly string[];
}

/** `bootstrap` of one source into a self-managed federated target, with --allow-anonymous-discovery. */
export function bootstrapFederated(options: FederatedBootstrap): Promise<{ stdout: string; stderr: string }> {
  return execute(process.execPath, [
    CLI,
    'bootstrap',
    '--credential',
    options.credential,
    ...(options.credential === 'certificate' ? ['--bootstrap-with', 'federated'] : []),
    '--source-name',
    options.sourceName,
    '--target-name',
    options.targetName,
    '--target-kubeconfig',
    options.targetKubeconfig,
    '--source-kubeconfig',
    options.sourceKubeconfig,
    '--namespace',
    options.namespace,
    '--service-account',
    options.serviceAccount,
    '--audience',
    options.audience,
    '--authentication-config',
    options.authConfig,
    '--allow-anonymous-discovery',
    ...(options.extra ?? []),
  ]);
}

/** The sidecar's pod in the source, run as `serviceAccount` (nothing runs it; its tokens are bound to it). */
export function createAgentPod(source: KubeConfig, namespace: string, serviceAccount: string): Promise<V1Pod> {
  return source.makeApiClient(CoreV1Api).createNamespacedPod({
    namespace,
    body: {
      metadata: { name: 'agent-0' },
      spec: { serviceAccountName: serviceAccount, containers: [{ name: 'agent', image: 'agent:test' }] },
    },
  });
}

/** Lets `user` renew its certificate, as the approver chart grants its sources' identities. */
export function grantRenewal(target: KubeConfig, bindingName: string, user: string): Promise<void> {
  return bindClusterRole(target, bindingName, CSR_REQUESTER_ROLE, user);
}
