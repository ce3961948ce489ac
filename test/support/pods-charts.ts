// Installs shared by the test/pods files: the approver chart on the target with one source's policy, and
// `kubeconfig-rotator bootstrap` for that source (the pods cluster is both source and target).
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig, type V1Container } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { chartImageReference } from '../../scripts/image/build.ts';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { eventually } from './eventually.ts';
import { uniqueName } from './kube.ts';
import type { NodeTestCluster } from './node-cluster.ts';

const execute = promisify(execFile);

export interface Source {
  readonly name: string;
  /** The client certificate's common name the approver's policy accepts for this source. */
  readonly identity: string;
  readonly organization: string;
}

/** A source of a test's own: its name, and the identity the approver's policy accepts for it. */
export function uniqueSource(): Source {
  const name = uniqueName('src');
  return { name, identity: `kcr-agent-${name}`, organization: 'kcr-agents' };
}

/** An injector test's namespaces: the approver's (the target), the injector's and the agents'. */
export function injectorNamespaces(): { readonly target: string; readonly injector: string; readonly agent: string } {
  return { target: uniqueName('kcr-target'), injector: uniqueName('kcr-injector'), agent: uniqueName('kcr-agents') };
}

/** helm install of the approver chart into `namespace`, accepting `source` with the view role. */
export async function installApprover(
  cluster: NodeTestCluster,
  scratch: string,
  release: string,
  namespace: string,
  source: Source,
  /** The source's bootstrap identities, where the chart's default (its bootstrap group) is not what the test uses. */
  bootstrap?: Record<string, unknown>,
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
          ...(bootstrap === undefined ? {} : { bootstrap }),
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

/**
 * The sidecar chart's injector (release `injector`, in `namespaces.injector`) for `target`, and the agent's
 * namespace it injects into (opted in, with ServiceAccount agent), with the bootstrap Secret of `east` there
 * (bootstrapArgs: bootstrap's extra flags); returns once the injector is rolled out.
 */
export async function installInjector(
  cluster: NodeTestCluster,
  scratch: string,
  namespaces: { readonly agent: string; readonly injector: string },
  sourceName: string,
  target: Record<string, unknown>,
  bootstrapArgs: readonly string[] = [],
): Promise<void> {
  const core = cluster.admin().makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: { metadata: { name: namespaces.agent, labels: { 'kubeconfig-rotator.io/injection': 'enabled' } } },
  });
  await eventually(() => core.readNamespacedServiceAccount({ namespace: namespaces.agent, name: 'default' }), {
    timeoutMs: 30_000,
  });
  await core.createNamespacedServiceAccount({ namespace: namespaces.agent, body: { metadata: { name: 'agent' } } });
  const values = join(scratch, 'injector.yaml');
  writeFileSync(
    values,
    stringify({
      mode: 'sidecar',
      targets: [target],
      injector: { enabled: true, agentServiceAccounts: [{ namespace: namespaces.agent, name: 'agent' }] },
    }),
  );
  await cluster.helm(
    ...['install', 'injector', join(REPO_ROOT, 'charts', 'kubeconfig-rotator-sidecar')],
    ...['--namespace', namespaces.injector, '--create-namespace', '-f', values],
  );
  // The bootstrap Secret lives in the agent's namespace: the injected sidecar mounts it there.
  await bootstrapEast(cluster, sourceName, namespaces.agent, bootstrapArgs);
  const deployment = 'injector-kubeconfig-rotator-sidecar-injector';
  await cluster.kubectl('rollout', 'status', `deployment/${deployment}`, '-n', namespaces.injector, '--timeout=180s');
}

const AGENT = readFileSync(join(REPO_ROOT, 'test', 'pods', 'fixtures', 'agent', 'files', 'agent.js'), 'utf8');

/** The agent (test/pods/fixtures/agent's program) as an injected pod's container: it calls the target with east's credential. */
export function agentContainer(targetNamespace: string): V1Container {
  return {
    name: 'agent',
    image: chartImageReference(),
    imagePullPolicy: 'IfNotPresent',
    command: ['node', '-e', AGENT],
    env: [
      { name: 'TARGET_NAMESPACE', value: targetNamespace },
      { name: 'CREDENTIALS', value: '/var/run/kubeconfig-rotator/out/east' },
    ],
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
