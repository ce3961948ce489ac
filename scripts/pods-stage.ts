// `npm run test:pods`: the tests that need real pods (test/pods/). Builds what a node needs (outside any
// namespace: the builds use the network), starts the cluster `pods` with a node (or reuses a running one),
// runs `node --test` on test/pods inside its namespace (the apiserver listens on the node's address, which
// only exists in there), and stops the cluster if this run started it. The cluster acts as source and target.
// Arguments: test files (default: every test/pods/**/*.test.ts).
import { spawn } from 'node:child_process';
import { clustersRoot, REPO_ROOT } from './testbed/binaries.ts';
import { readClusterState } from './testbed/cluster.ts';
import { runMain } from './testbed/main.ts';
import { buildForNode } from './testbed/node-build.ts';
import { isNodeClusterRunning, nsenterArgs, startNodeCluster, stopNodeCluster } from './testbed/node.ts';

/** The node cluster of the pods stage; test/support/node-cluster.ts reads it from KCR_NODE_CLUSTER. */
export const PODS_CLUSTER = 'pods';

const progress = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const root = clustersRoot();
  const files = argv.length > 0 ? argv : ['test/pods/**/*.test.ts'];
  const started = Date.now();
  const built = await buildForNode(progress);
  progress(`pods stage: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const before = readClusterState(root, PODS_CLUSTER);
  const reused = before !== undefined && isNodeClusterRunning(before);
  const state = await startNodeCluster(PODS_CLUSTER, { ...built, root, onProgress: progress });
  const holder = state.node?.holder;
  if (holder === undefined) throw new Error(`cluster ${PODS_CLUSTER} has no node`);
  const command = [
    process.execPath,
    '--test',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-concurrency=1',
    '--test-timeout=900000',
    ...files,
  ];
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('nsenter', nsenterArgs(holder, command, REPO_ROOT), {
      stdio: 'inherit',
      env: { ...process.env, KCR_NODE_CLUSTER: PODS_CLUSTER, KCR_CLUSTERS_DIR: root },
    });
    child.once('error', reject);
    child.once('close', (exit) => {
      resolve(exit ?? 1);
    });
  });
  if (!reused) await stopNodeCluster(root, PODS_CLUSTER);
  progress(`pods stage: ${code === 0 ? 'passed' : 'failed'} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return code;
}

runMain(main);
