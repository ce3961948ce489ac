// Installs shared by the test/pods files: the approver chart on the target with one source's policy, and
// `kubeconfig-rotator bootstrap` for that source (the pods cluster is both source and target).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig, type CoreV1Api } from '@kubernetes/client-node';
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

/** The Secret a sidecar publishes, read as its consumer would: its kubeconfig loaded; undefined until it exists. */
export async function readPublished(
  core: CoreV1Api,
  namespace: string,
  name: string,
): Promise<{ readonly kubeConfig: KubeConfig; readonly data: Readonly<Record<string, string>> } | undefined> {
  const secret = await core.readNamespacedSecret({ namespace, name }).catch(() => undefined);
  const config = secret?.data?.config;
  if (secret?.data === undefined || config === undefined) return undefined;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(Buffer.from(config, 'base64').toString('utf8'));
  return { kubeConfig, data: secret.data };
}
