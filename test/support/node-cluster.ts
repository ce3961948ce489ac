// The cluster with a node that `npm run test:pods` starts (scripts/pods-stage.ts) and whose namespace the
// pods tests run in: its apiserver is on the node's address, reachable only from in there. It serves as
// both source and target.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { clustersRoot } from '../../scripts/testbed/binaries.ts';
import { readClusterState, type ClusterState } from '../../scripts/testbed/cluster.ts';
import { isNodeClusterRunning, type NodeRecord } from '../../scripts/testbed/node.ts';
import { clusterFromState, type TestCluster } from './clusters.ts';
import { eventually } from './eventually.ts';

export interface NodeTestCluster extends TestCluster {
  readonly node: NodeRecord;
  /** kubectl of the pinned release as the cluster's admin; resolves with stdout. */
  kubectl(...args: string[]): Promise<string>;
  /** helm as the cluster's admin. */
  helm(...args: string[]): Promise<string>;
}

const execute = promisify(execFile);

export function nodeCluster(): NodeTestCluster {
  const name = process.env.KCR_NODE_CLUSTER;
  const state: ClusterState | undefined = name === undefined ? undefined : readClusterState(clustersRoot(), name);
  const node = state?.node;
  if (state === undefined || node === undefined || !isNodeClusterRunning(state))
    throw new Error(
      `no running cluster with a node (KCR_NODE_CLUSTER=${String(name)}): run these tests with \`npm run test:pods\`, ` +
        'which starts one and runs them inside its namespace',
    );
  const tool = async (bin: string, args: readonly string[]) =>
    (await execute(join(node.binDir, bin), ['--kubeconfig', state.kubeconfig, ...args], { maxBuffer: 16 << 20 }))
      .stdout;
  return {
    ...clusterFromState(state),
    node,
    kubectl: (...args) => tool('kubectl', args),
    helm: (...args) => tool('helm', args),
  };
}

/** Polls a pod until `done` says so; throws with the pod's phase, container states and events if it never does. */
export async function waitForPod(
  cluster: TestCluster,
  namespace: string,
  name: string,
  done: (pod: V1Pod) => boolean,
  timeoutMs = 120_000,
): Promise<V1Pod> {
  const api = cluster.admin().makeApiClient(CoreV1Api);
  let pod: V1Pod | undefined;
  const reached = await eventually(
    async () => {
      pod = await api.readNamespacedPod({ namespace, name }).catch(() => undefined);
      return pod !== undefined && done(pod) ? pod : false;
    },
    { timeoutMs, intervalMs: 250 },
  ).catch(() => undefined);
  if (reached !== undefined) return reached;
  const events = await api.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  throw new Error(
    `pod ${namespace}/${name} did not get there in ${String(timeoutMs / 1000)} s: phase ${String(pod?.status?.phase)}, ` +
      `containers ${JSON.stringify(pod?.status?.containerStatuses?.map((s) => ({ name: s.name, state: s.state })))}, ` +
      `events: ${events.items.map((e) => `${String(e.reason)}: ${String(e.message)}`).join(' | ')}`,
  );
}
