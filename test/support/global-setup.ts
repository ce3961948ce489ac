// node --test global setup: start (or reuse) the source and target clusters once for the whole run, and
// stop at the end only the ones this run started, so clusters started by hand stay up.
import { clustersRoot, ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { runningClusters, startClusters, stopCluster } from '../../scripts/testbed/cluster.ts';
import { CLUSTER_NAMES } from './clusters.ts';

const startedHere: string[] = [];

export async function globalSetup(): Promise<void> {
  const root = clustersRoot();
  const alreadyRunning = runningClusters(root, CLUSTER_NAMES);
  const binDir = await ensureControlPlane((line) => process.stderr.write(`${line}\n`));
  const started = Date.now();
  await startClusters(CLUSTER_NAMES, { binDir, root, onProgress: (line) => process.stderr.write(`${line}\n`) });
  startedHere.push(...CLUSTER_NAMES.filter((name) => !alreadyRunning.includes(name)));
  process.stderr.write(
    `test clusters ready in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(started: ${startedHere.join(', ') || 'none'}; reused: ${alreadyRunning.join(', ') || 'none'})\n`,
  );
}

export async function globalTeardown(): Promise<void> {
  for (const name of startedHere) await stopCluster(clustersRoot(), name);
}
