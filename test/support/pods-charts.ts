// Installs shared by the test/pods files: the approver chart on the target with one source's policy, and
// `kubeconfig-rotator bootstrap` for that source (the pods cluster is both source and target).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import type { NodeTestCluster } from './node-cluster.ts';

const execute = promisify(execFile);

export interface Source {
  readonly name: string;
  /** The client certificate's common name the approver's policy accepts for this source. */
  readonly identity: string;
  readonly organization: string;
}

/** helm install of the approver chart into `namespace`, accepting `source` with the view role. */
export async function installApprover(
  cluster: NodeTestCluster,
  scratch: string,
  release: string,
  namespace: string,
  source: Source,
): Promise<void> {
  const values = join(scratch, `${release}-values.yaml`);
  writeFileSync(
    values,
    stringify({
      sources: [
        {
          name: source.name,
          identity: { commonNames: [source.identity], organizations: [source.organization] },
          maxExpirationSeconds: 3600,
          clusterRoles: ['view'],
        },
      ],
    }),
  );
  await cluster.helm(
    ...['install', release, join(REPO_ROOT, 'charts', 'kubeconfig-rotator-approver')],
    ...['--namespace', namespace, '--create-namespace', '-f', values],
  );
}

/** The sidecar chart's values for one target `east` rotating every few seconds into `sinks`. */
export function eastTarget(source: Source, sinks: Record<string, unknown>): Record<string, unknown> {
  return {
    name: 'east',
    bootstrapSecret: { name: 'kubeconfig-rotator-bootstrap-east' },
    identity: { commonName: source.identity, organizations: [source.organization] },
    expirationSeconds: 600,
    // A rotation every few seconds, so a test sees several.
    rotation: { minRemainingSeconds: 60, forceIntervalSeconds: 5 },
    sinks,
  };
}

/** `kubeconfig-rotator bootstrap` of target `east` for the source named so, its Secret written into `namespace`. */
export async function bootstrapEast(
  cluster: NodeTestCluster,
  sourceName: string,
  namespace: string,
  extraArgs: readonly string[] = [],
): Promise<void> {
  await execute(process.execPath, [
    join(REPO_ROOT, 'src', 'cli.ts'),
    'bootstrap',
    ...['--source-name', sourceName, '--target-name', 'east', '--namespace', namespace],
    ...['--target-kubeconfig', cluster.state.kubeconfig, '--source-kubeconfig', cluster.state.kubeconfig],
    ...extraArgs,
  ]);
}
