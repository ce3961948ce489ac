// Local test clusters: `node scripts/controlplane.ts build | up NAME... | down NAME...|--all | status`.
// `up` prints each cluster's admin kubeconfig path on stdout (progress goes to stderr).
import { readdirSync } from 'node:fs';
import { clustersRoot, ensureConsumerProbes, ensureControlPlane } from './testbed/binaries.ts';
import { isClusterRunning, readClusterState, startClusters, stopCluster } from './testbed/cluster.ts';
import { runMain } from './testbed/main.ts';

const USAGE = `usage: npm run cluster -- <command>
  build              build (or reuse) the pinned control-plane binaries; prints their directory
  build --consumers  the same, then the consumer probes (npm run test:integration: before any test runs,
                     so no build counts against a test's timeout); prints both directories
  up NAME...         start the named clusters (or reuse running ones); prints each admin kubeconfig path
  down NAME...       stop the named clusters and delete their state
  down --all         stop every cluster
  status             list clusters, their apiserver address and admin kubeconfig
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
      if (names.length > 1 || (names.length === 1 && names[0] !== '--consumers')) break;
      process.stdout.write(`${await ensureControlPlane(progress)}\n`);
      if (names[0] === '--consumers') process.stdout.write(`${await ensureConsumerProbes(progress)}\n`);
      return 0;
    case 'up': {
      if (names.length === 0) break;
      const binDir = await ensureControlPlane(progress);
      const states = await startClusters(names, { binDir, root, onProgress: progress });
      for (const state of states) process.stdout.write(`${state.kubeconfig}\n`);
      return 0;
    }
    case 'down': {
      const targets = names.length === 1 && names[0] === '--all' ? knownClusters(root) : names;
      if (targets.length === 0 && names[0] !== '--all') break;
      for (const name of targets)
        progress((await stopCluster(root, name)) ? `stopped ${name}` : `${name} was not running`);
      return 0;
    }
    case 'status':
      for (const name of knownClusters(root)) {
        const state = readClusterState(root, name);
        if (state === undefined) continue;
        process.stdout.write(
          `${name}\t${isClusterRunning(state) ? 'running' : 'stopped'}\t${state.server}\t${state.kubeconfig}\n`,
        );
      }
      return 0;
  }
  process.stderr.write(USAGE);
  return 2;
}

runMain(main);
