// The two test clusters (source and target), started once per test run by global-setup.ts.
import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { clustersRoot } from '../../scripts/testbed/binaries.ts';
import { isClusterRunning, readClusterState, type ClusterState } from '../../scripts/testbed/cluster.ts';
import type { ClusterEndpoint } from './kubeconfig.ts';

export const CLUSTER_NAMES = ['source', 'target'] as const;
export type ClusterName = (typeof CLUSTER_NAMES)[number];

export interface TestCluster {
  readonly state: ClusterState;
  /** A fresh admin KubeConfig (system:masters). */
  admin(): KubeConfig;
  /** Its apiserver's address and the PEM of the CA that signed its serving certificate. */
  endpoint(): ClusterEndpoint;
}

export function testCluster(name: ClusterName): TestCluster {
  const state = readClusterState(clustersRoot(), name);
  if (state === undefined || !isClusterRunning(state)) {
    throw new Error(
      `test cluster "${name}" is not running: run the integration tests with \`npm run test:integration\` ` +
        `(its global setup starts the clusters) or start them with \`npm run cluster -- up source target\``,
    );
  }
  return clusterFromState(state);
}

/** A TestCluster for any running cluster's state (e.g. one a test starts for itself). */
export function clusterFromState(state: ClusterState): TestCluster {
  return {
    state,
    admin() {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(state.kubeconfig);
      return kubeConfig;
    },
    endpoint: () => ({ server: state.server, caPem: readFileSync(state.caCertFile, 'utf8') }),
  };
}
