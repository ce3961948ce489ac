// Local test clusters: `node scripts/controlplane.ts build | up NAME... [--node] | down NAME...|--all | status
// | exec NAME -- COMMAND`. `up` prints each cluster's admin kubeconfig path on stdout (progress goes to stderr).
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { clustersRoot, ensureConsumerProbes, ensureControlPlane, ensureNodeBinaries } from './testbed/binaries.ts';
import { buildForNode } from './testbed/node-build.ts';
import { isClusterRunning, readClusterState, startClusters } from './testbed/cluster.ts';
import { runMain } from './testbed/main.ts';
import { isNodeClusterRunning, nsenterArgs, startNodeCluster, stopNodeCluster } from './testbed/node.ts';

const USAGE = `usage: npm run cluster -- <command>
  build              build (or reuse) the pinned control-plane binaries; prints their directory
  build --consumers  the same, then the consumer probes (npm run test:integration: before any test runs,
                     so no build counts against a test's timeout); prints both directories
  build --node       the same, then a node's kube-scheduler and kubelet into the same directory
  up NAME...         start the named clusters (or reuse running ones); prints each admin kubeconfig path
  up NAME... --node  the same, each cluster with a node (containerd, kubelet, the project's and the pause
                     images imported), all inside a network + mount namespace of its own (DEVELOPERS.md)
  down NAME...       stop the named clusters and delete their state (a node's leaves no process, mount,
                     namespace or cgroup behind)
  down --all         stop every cluster
  status             list clusters, their apiserver address and admin kubeconfig (and "node")
  exec NAME -- CMD   run CMD inside a node cluster's namespace, where its apiserver and pods are reachable
`;

const progress = (line: string) => process.stderr.write(`${line}\n`);

function knownClusters(root: string): string[] {
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...names] = argv;
  const root = clustersRoot();
  switch (command) {
    case 'build':
      if (names.length > 1 || (names.length === 1 && names[0] !== '--consumers' && names[0] !== '--node')) break;
      if (names[0] === '--node') {
        process.stdout.write(`${await ensureNodeBinaries(progress)}\n`);
        return 0;
      }
      process.stdout.write(`${await ensureControlPlane(progress)}\n`);
      if (names[0] === '--consumers') process.stdout.write(`${await ensureConsumerProbes(progress)}\n`);
      return 0;
    case 'up': {
      const withNode = names.includes('--node');
      const clusters = names.filter((name) => name !== '--node');
      if (clusters.length === 0) break;
      if (withNode) {
        for (const state of await startNodeClusters(clusters, root)) process.stdout.write(`${state.kubeconfig}\n`);
        return 0;
      }
      const binDir = await ensureControlPlane(progress);
      const states = await startClusters(clusters, { binDir, root, onProgress: progress });
      for (const state of states) process.stdout.write(`${state.kubeconfig}\n`);
      return 0;
    }
    case 'exec': {
      const [name, separator, ...command] = names;
      if (name === undefined || separator !== '--' || command.length === 0) break;
      return execInNode(root, name, command);
    }
    case 'down': {
      const targets = names.length === 1 && names[0] === '--all' ? knownClusters(root) : names;
      if (targets.length === 0 && names[0] !== '--all') break;
      for (const name of targets)
        progress((await stopNodeCluster(root, name, progress)) ? `stopped ${name}` : `${name} was not running`);
      return 0;
    }
    case 'status':
      for (const name of knownClusters(root)) {
        const state = readClusterState(root, name);
        if (state === undefined) continue;
        const running = state.node === undefined ? isClusterRunning(state) : isNodeClusterRunning(state);
        process.stdout.write(
          `${name}\t${running ? 'running' : 'stopped'}\t${state.server}\t${state.kubeconfig}` +
            `${state.node === undefined ? '' : '\tnode'}\n`,
        );
      }
      return 0;
  }
  process.stderr.write(USAGE);
  return 2;
}

/** Node clusters one after the other (each makes its own namespace), after building what they need. */
async function startNodeClusters(names: readonly string[], root: string) {
  const built = await buildForNode(progress);
  const states = [];
  for (const name of names) states.push(await startNodeCluster(name, { ...built, root, onProgress: progress }));
  return states;
}

/** Runs a command inside a running node cluster's namespace, in this working directory; its exit code. */
async function execInNode(root: string, name: string, command: readonly string[]): Promise<number> {
  const state = readClusterState(root, name);
  if (state?.node === undefined || !isNodeClusterRunning(state))
    throw new Error(`${name} is not a running cluster with a node (npm run cluster -- up ${name} --node)`);
  const child = spawn('nsenter', nsenterArgs(state.node.holder, command), { stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}

runMain(main);
