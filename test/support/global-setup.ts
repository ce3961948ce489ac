// node --test global setup: start (or reuse) the source and target clusters once for the whole run, and
// stop at the end only the ones this run started, so clusters started by hand stay up.
import { clustersRoot, ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { runningClusters, startClusters, stopCluster } from '../../scripts/testbed/cluster.ts';
import { CLUSTER_NAMES, type ClusterName } from './clusters.ts';

const startedHere: string[] = [];

export async function globalSetup(): Promise<void> {
  const root = clustersRoot();
  const alreadyRunning = runningClusters(root, CLUSTER_NAMES);
  const onProgress = (line: string) => process.stderr.write(`${line}\n`);
  // A mixed-version run (npm run test:matrix -- 1.34:1.37) starts the source at KCR_SOURCE_KUBE_VERSION; the
  // target, like every other cluster and kubectl the tests use, is KCR_KUBE_VERSION's.
  const sourceVersion = process.env.KCR_SOURCE_KUBE_VERSION;
  const groups: [readonly ClusterName[], string | undefined][] =
    sourceVersion === undefined
      ? [[CLUSTER_NAMES, undefined]]
      : [
          [['source'], sourceVersion],
          [['target'], undefined],
        ];
  const started = Date.now();
  for (const [names, version] of groups) {
    const binDir = await ensureControlPlane(onProgress, version);
    onProgress(`${names.join(', ')}: ${binDir}`);
    await startClusters(names, { binDir, root, onProgress });
  }
  startedHere.push(...CLUSTER_NAMES.filter((name) => !alreadyRunning.includes(name)));
  process.stderr.write(
    `test clusters ready in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(started: ${startedHere.join(', ') || 'none'}; reused: ${alreadyRunning.join(', ') || 'none'})\n`,
  );
}

export async function globalTeardown(): Promise<void> {
  for (const name of startedHere) await stopCluster(clustersRoot(), name);
}
