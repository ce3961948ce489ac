// Copies the ClusterProfile CRD of the pinned sigs.k8s.io/cluster-inventory-api into the sidecar chart, with a
// header naming its source, version and license; the chart must carry exactly the module's CRD, not our own
// rewrite of it. `--check` only compares and exits 1 when the chart's copy differs (the unit test does the same).
// The module comes from the Go module cache, downloaded through the Go module proxy when missing.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './testbed/binaries.ts';

export const CLUSTER_INVENTORY_MODULE = 'sigs.k8s.io/cluster-inventory-api';
/** Pinned: the version our ClusterProfiles are written for and tested against. */
export const CLUSTER_INVENTORY_VERSION = 'v0.1.0';
const CRD_IN_MODULE = 'config/crd/bases/multicluster.x-k8s.io_clusterprofiles.yaml';
export const CHART_CRD_PATH = join(
  REPO_ROOT,
  'charts/kubeconfig-rotator-sidecar/files/multicluster.x-k8s.io_clusterprofiles.yaml',
);

const HEADER = [
  `# Copied unchanged from ${CLUSTER_INVENTORY_MODULE}@${CLUSTER_INVENTORY_VERSION}, ${CRD_IN_MODULE}`,
  '# (Copyright The Kubernetes Authors, Apache License 2.0: https://www.apache.org/licenses/LICENSE-2.0).',
  '# Do not edit: run `node scripts/clusterprofile-crd.ts` after changing the pinned version.',
  '',
].join('\n');

/** The module's directory in the Go module cache (`go mod download` fetches it when missing). */
export function moduleDirectory(): string {
  const output = execFileSync(
    'go',
    ['mod', 'download', '-json', `${CLUSTER_INVENTORY_MODULE}@${CLUSTER_INVENTORY_VERSION}`],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      // Outside any main module: the download does not depend on (or change) a go.mod of ours.
      env: { ...process.env, GO111MODULE: 'on', GOFLAGS: '-mod=mod' },
      timeout: 120_000,
      maxBuffer: 1024 * 1024,
    },
  );
  const { Dir: dir, Error: error } = JSON.parse(output) as { Dir?: string; Error?: string };
  if (dir === undefined)
    throw new Error(`go mod download ${CLUSTER_INVENTORY_MODULE}@${CLUSTER_INVENTORY_VERSION}: ${error ?? 'no Dir'}`);
  return dir;
}

/** The CRD exactly as the pinned module ships it. */
export function moduleCrd(): string {
  return readFileSync(join(moduleDirectory(), CRD_IN_MODULE), 'utf8');
}

/** What the chart's file must hold: the header, then the module's CRD byte for byte. */
export const chartCrdText = (crd: string): string => `${HEADER}${crd}`;

if (import.meta.main) {
  const wanted = chartCrdText(moduleCrd());
  let current: string | undefined;
  try {
    current = readFileSync(CHART_CRD_PATH, 'utf8');
  } catch {
    current = undefined;
  }
  if (process.argv.includes('--check')) {
    if (current !== wanted) process.stderr.write(`${CHART_CRD_PATH} differs from the pinned module's CRD\n`);
    process.exitCode = current === wanted ? 0 : 1;
  } else if (current !== wanted) {
    writeFileSync(CHART_CRD_PATH, wanted);
    process.stderr.write(`wrote ${CHART_CRD_PATH}\n`);
  }
}
