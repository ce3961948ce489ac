// What the injector does to a Pod, decided from the Pod and the injector's config alone: nothing (not asked,
// or already injected), a rejection naming the bad annotation, a dry run (warnings only), or a JSON Patch
// (RFC 6902) that adds the native sidecar, its volumes, and the kubeconfig mount and env to the agent's
// containers.
import { stringify } from 'yaml';
import type { InjectedTarget, InjectorConfig } from '../config/injector.ts';

export const ANNOTATIONS = {
  inject: 'kubeconfig-rotator.io/inject',
  dryRun: 'kubeconfig-rotator.io/dry-run',
  kubeconfigEnv: 'kubeconfig-rotator.io/kubeconfig-env',
  mountPath: 'kubeconfig-rotator.io/mount-path',
  containers: 'kubeconfig-rotator.io/containers',
  injected: 'kubeconfig-rotator.io/injected',
  config: 'kubeconfig-rotator.io/config',
  referenceSecret: 'kubeconfig-rotator.io/reference-secret',
} as const;

export const SIDECAR_NAME = 'kubeconfig-rotator';
export const VOLUMES = {
  config: 'kubeconfig-rotator-config',
  state: 'kubeconfig-rotator-state',
  output: 'kubeconfig-rotator-out',
} as const;
const BOOTSTRAP_DIR = '/var/run/kubeconfig-rotator/bootstrap';
const CONFIG_DIR = '/etc/kubeconfig-rotator';
const STATE_DIR = '/var/lib/kubeconfig-rotator';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_REFERENCE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

/** A reference-mode Secret the injected sidecar also publishes: its kubeconfig names the agent's files by path. */
export interface ReferenceSecret {
  readonly namespace: string;
  readonly name: string;
  /** The target's directory as the agent mounts it. */
  readonly directory: string;
}

export interface ContainerLike {
  name?: string;
  env?: { name: string }[];
  volumeMounts?: { name: string; mountPath: string }[];
  ports?: { containerPort: number }[];
  securityContext?: { runAsUser?: number; runAsGroup?: number };
}

export interface PodLike {
  metadata?: { annotations?: Record<string, string> };
  spec?: {
    containers?: ContainerLike[];
    initContainers?: ContainerLike[];
    volumes?: { name: string }[];
    securityContext?: { runAsUser?: number; runAsGroup?: number };
  };
}

export type JsonPatchOperation = { op: 'add'; path: string; value: unknown };

export type InjectionPlan =
  | { readonly kind: 'skip'; readonly reason: string }
  | { readonly kind: 'reject'; readonly message: string }
  | { readonly kind: 'dry-run'; readonly warnings: readonly string[] }
  | {
      readonly kind: 'inject';
      readonly patch: readonly JsonPatchOperation[];
      readonly warnings: readonly string[];
      readonly targets: readonly string[];
    };

/** JSON Pointer escaping of one path segment (RFC 6901). */
const pointer = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');

const list = (text: string) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

/** What the pod's annotations ask for, once each is read (a malformed one adds a problem naming it). */
interface Request {
  readonly targets: readonly InjectedTarget[];
  /** The variable that names the kubeconfigs in the chosen containers; '' for none. */
  readonly envName: string;
  readonly mountPath: string;
  /** The containers that get the kubeconfigs, with their index in the pod's list. */
  readonly selected: readonly { readonly container: ContainerLike; readonly index: number }[];
  readonly reference: ReferenceSecret | undefined;
  readonly dryRun: boolean;
}

export function planInjection(pod: PodLike, config: InjectorConfig): InjectionPlan {
  const annotations = pod.metadata?.annotations ?? {};
  const requested = annotations[ANNOTATIONS.inject];
  if (requested === undefined) return { kind: 'skip', reason: `no ${ANNOTATIONS.inject} annotation` };
  if (alreadyInjected(pod, annotations)) return { kind: 'skip', reason: 'already injected' };

  const problems: string[] = [];
  const request = readRequest(pod, annotations, requested, config, problems);
  problems.push(...conflicts(pod, request.targets, config));
  if (problems.length > 0)
    return { kind: 'reject', message: `kubeconfig-rotator injection refused: ${problems.join('; ')}` };
  if (request.dryRun) return { kind: 'dry-run', warnings: [dryRunSummary(request)] };
  const { patch, warnings } = injection(pod, request, config);
  return { kind: 'inject', patch, warnings, targets: request.targets.map((target) => target.name) };
}

function alreadyInjected(pod: PodLike, annotations: Record<string, string>): boolean {
  return (
    annotations[ANNOTATIONS.injected] !== undefined ||
    (pod.spec?.initContainers ?? []).some((container) => container.name === SIDECAR_NAME)
  );
}

function readRequest(
  pod: PodLike,
  annotations: Record<string, string>,
  requested: string,
  config: InjectorConfig,
  problems: string[],
): Request {
  const containers = pod.spec?.containers ?? [];
  const targets = resolveTargets(requested, config, problems);
  const envName = annotations[ANNOTATIONS.kubeconfigEnv] ?? 'KUBECONFIG';
  if (envName !== '' && !ENV_NAME.test(envName))
    problems.push(`${ANNOTATIONS.kubeconfigEnv}: "${envName}" is not an environment variable name (or "" for none)`);
  const mountPath = annotations[ANNOTATIONS.mountPath] ?? config.sidecar.outputPath;
  if (!mountPath.startsWith('/') || mountPath.includes('..'))
    problems.push(`${ANNOTATIONS.mountPath}: "${mountPath}" must be an absolute path without ".."`);
  const chosen = chosenContainers(annotations[ANNOTATIONS.containers], containers, problems);
  const reference = referenceSecretOf(annotations[ANNOTATIONS.referenceSecret], targets, mountPath, problems);
  const dryRun = annotations[ANNOTATIONS.dryRun];
  if (dryRun !== undefined && dryRun !== 'true' && dryRun !== 'false') {
    problems.push(`${ANNOTATIONS.dryRun}: must be "true" or "false"`);
  }
  const selected = containers
    .map((container, index) => ({ container, index }))
    .filter(({ container }) => chosen.includes(container.name ?? ''));
  return { targets, envName, mountPath, selected, reference, dryRun: dryRun === 'true' };
}

/** The containers annotation's names (each must be one of the pod's containers), else every container. */
function chosenContainers(value: string | undefined, containers: readonly ContainerLike[], problems: string[]) {
  const chosen = value === undefined ? containers.map((container) => container.name ?? '') : list(value);
  for (const name of chosen) {
    if (!containers.some((container) => container.name === name))
      problems.push(`${ANNOTATIONS.containers}: the pod has no container "${name}"`);
  }
  return chosen;
}

/** What the pod already has that the injector would add: its volumes, the sidecar's name, the sidecar's port. */
function conflicts(pod: PodLike, targets: readonly InjectedTarget[], config: InjectorConfig): string[] {
  const problems: string[] = [];
  const ourVolumes = [VOLUMES.config, VOLUMES.state, VOLUMES.output, ...targets.map(bootstrapVolume)];
  for (const volume of pod.spec?.volumes ?? [])
    if (ourVolumes.includes(volume.name))
      problems.push(`the pod already has a volume named "${volume.name}", which the injector adds`);
  for (const container of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    if (container.name === SIDECAR_NAME) problems.push(`the pod already has a container named "${SIDECAR_NAME}"`);
    if (container.ports?.some((port) => port.containerPort === config.sidecar.port)) {
      problems.push(
        `container "${String(container.name)}" uses port ${String(config.sidecar.port)}, which the sidecar listens on (change the injector's sidecar.port, the chart's config.port)`,
      );
    }
  }
  return problems;
}

/** The value of the kubeconfig variable: each target's kubeconfig as the chosen containers mount it. */
const kubeconfigPaths = (request: Request) =>
  request.targets.map((target) => `${request.mountPath}/${target.name}/kubeconfig`).join(':');

function dryRunSummary(request: Request): string {
  return (
    `dry run: would add the kubeconfig-rotator sidecar for ${request.targets.map((target) => target.name).join(', ')}` +
    ` and mount ${request.mountPath} in ${request.selected.map(({ container }) => container.name).join(', ')}` +
    (request.envName === '' ? '' : ` with ${request.envName}=${kubeconfigPaths(request)}`)
  );
}

/**
 * The patch, in order: the pod's new annotations, the sidecar first among the init containers, its volumes, then
 * each chosen container's mount and variable (a warning instead where the container sets the variable itself).
 */
function injection(pod: PodLike, request: Request, config: InjectorConfig) {
  const runAs = runAsOf(pod, request.selected[0]?.container);
  const patch = [
    ...annotationOperations(pod, request, config),
    ...appendOperations(
      '/spec/initContainers',
      pod.spec?.initContainers,
      [sidecarContainer(request.targets, config, runAs)],
      true,
    ),
    ...appendOperations('/spec/volumes', pod.spec?.volumes, volumes(request.targets)),
  ];
  const warnings: string[] = [];
  for (const { container, index } of request.selected) {
    patch.push(
      ...appendOperations(`/spec/containers/${String(index)}/volumeMounts`, container.volumeMounts, [
        { name: VOLUMES.output, mountPath: request.mountPath, readOnly: true },
      ]),
    );
    if (request.envName === '') continue;
    if (container.env?.some((variable) => variable.name === request.envName)) {
      warnings.push(`container "${String(container.name)}" already sets ${request.envName}; it was left as it is`);
      continue;
    }
    patch.push(
      ...appendOperations(`/spec/containers/${String(index)}/env`, container.env, [
        { name: request.envName, value: kubeconfigPaths(request) },
      ]),
    );
  }
  return { patch, warnings };
}

function annotationOperations(pod: PodLike, request: Request, config: InjectorConfig): JsonPatchOperation[] {
  const added = {
    [ANNOTATIONS.injected]: request.targets.map((target) => target.name).join(','),
    [ANNOTATIONS.config]: sidecarConfig(request.targets, config, request.reference),
  };
  if (pod.metadata?.annotations === undefined) return [{ op: 'add', path: '/metadata/annotations', value: added }];
  return Object.entries(added).map(([key, value]): JsonPatchOperation => ({
    op: 'add',
    path: `/metadata/annotations/${pointer(key)}`,
    value,
  }));
}

/** Adds items to an array of the pod: the array itself when the pod has none, else each item (at the end, or first). */
function appendOperations(
  path: string,
  existing: readonly unknown[] | undefined,
  items: unknown[],
  prepend = false,
): JsonPatchOperation[] {
  if (existing === undefined) return [{ op: 'add', path, value: items }];
  if (prepend) return items.toReversed().map((item) => ({ op: 'add', path: `${path}/0`, value: item }));
  return items.map((item) => ({ op: 'add', path: `${path}/-`, value: item }));
}

function resolveTargets(requested: string, config: InjectorConfig, problems: string[]): InjectedTarget[] {
  const names = list(requested);
  if (names.length === 0) {
    problems.push(
      `${ANNOTATIONS.inject}: empty; name targets (${config.targets.map((target) => target.name).join(', ')}) or a profile`,
    );
    return [];
  }
  const expanded = names.flatMap((name) => config.profiles[name] ?? [name]);
  const targets: InjectedTarget[] = [];
  for (const name of new Set(expanded)) {
    const target = config.targets.find((candidate) => candidate.name === name);
    if (target === undefined) {
      const profiles = Object.keys(config.profiles);
      problems.push(
        `${ANNOTATIONS.inject}: unknown target or profile "${name}" (targets: ${config.targets.map((candidate) => candidate.name).join(', ') || 'none'}` +
          `${profiles.length > 0 ? `; profiles: ${profiles.join(', ')}` : ''})`,
      );
    } else targets.push(target);
  }
  return targets;
}

const bootstrapVolume = (target: InjectedTarget) => `kubeconfig-rotator-bootstrap-${target.name}`;

/** The sidecar's own config file, carried in a pod annotation and mounted through the downward API. */
export function sidecarConfig(
  targets: readonly InjectedTarget[],
  config: InjectorConfig,
  reference?: ReferenceSecret,
): string {
  return stringify({
    stateDir: STATE_DIR,
    listen: { host: '0.0.0.0', port: config.sidecar.port },
    logLevel: config.sidecar.logLevel,
    targets: targets.map(({ bootstrapSecret, embed, ...target }) => ({
      ...target,
      bootstrapKubeconfig: `${BOOTSTRAP_DIR}/${target.name}/${bootstrapSecret.key}`,
      sinks: {
        directory: { path: `${config.sidecar.outputPath}/${target.name}`, embed },
        ...(reference === undefined
          ? {}
          : {
              secret: {
                namespace: reference.namespace,
                name: reference.name,
                reference: { directory: reference.directory },
              },
            }),
      },
    })),
  });
}

/** The reference-secret annotation: NAMESPACE/NAME, for a pod with exactly one target. */
function referenceSecretOf(
  value: string | undefined,
  targets: readonly InjectedTarget[],
  mountPath: string,
  problems: string[],
): ReferenceSecret | undefined {
  if (value === undefined) return undefined;
  const match = SECRET_REFERENCE.exec(value);
  if (match?.[1] === undefined || match[3] === undefined || value.length > 253) {
    problems.push(`${ANNOTATIONS.referenceSecret}: "${value}" must be NAMESPACE/NAME`);
    return undefined;
  }
  const [target, ...others] = targets;
  if (target === undefined || others.length > 0) {
    problems.push(
      `${ANNOTATIONS.referenceSecret}: needs exactly one target, the pod asks for ${String(targets.length)}`,
    );
    return undefined;
  }
  return { namespace: match[1], name: match[3], directory: `${mountPath}/${target.name}` };
}

/** The agent's user, so the sidecar writes a key the agent can read (0600). */
function runAsOf(pod: PodLike, container: ContainerLike | undefined): Record<string, number> {
  const user = container?.securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser;
  const group = container?.securityContext?.runAsGroup ?? pod.spec?.securityContext?.runAsGroup;
  return { ...(user === undefined ? {} : { runAsUser: user }), ...(group === undefined ? {} : { runAsGroup: group }) };
}

function sidecarContainer(targets: readonly InjectedTarget[], config: InjectorConfig, runAs: Record<string, number>) {
  const probe = (path: string) => ({ httpGet: { path, port: config.sidecar.port } });
  return {
    name: SIDECAR_NAME,
    image: config.sidecar.image,
    imagePullPolicy: config.sidecar.imagePullPolicy,
    args: ['sidecar', '--config', `${CONFIG_DIR}/config.yaml`],
    restartPolicy: 'Always',
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      // Federated targets: tokens of the pod's own ServiceAccount, bound to the pod.
      { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
      { name: 'POD_SERVICE_ACCOUNT', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
    ],
    startupProbe: {
      ...probe('/readyz'),
      periodSeconds: 2,
      failureThreshold: Math.max(1, Math.floor(config.sidecar.startupTimeoutSeconds / 2)),
    },
    readinessProbe: { ...probe('/readyz'), periodSeconds: 10 },
    livenessProbe: { ...probe('/healthz'), periodSeconds: 20, failureThreshold: 3 },
    resources: config.sidecar.resources,
    securityContext: { ...config.sidecar.securityContext, ...runAs },
    volumeMounts: [
      { name: VOLUMES.config, mountPath: CONFIG_DIR, readOnly: true },
      { name: VOLUMES.state, mountPath: STATE_DIR },
      { name: VOLUMES.output, mountPath: config.sidecar.outputPath },
      ...targets.map((target) => ({
        name: bootstrapVolume(target),
        mountPath: `${BOOTSTRAP_DIR}/${target.name}`,
        readOnly: true,
      })),
    ],
  };
}

function volumes(targets: readonly InjectedTarget[]) {
  return [
    {
      name: VOLUMES.config,
      downwardAPI: {
        items: [{ path: 'config.yaml', fieldRef: { fieldPath: `metadata.annotations['${ANNOTATIONS.config}']` } }],
      },
    },
    // In memory: the private key never touches the node's disk.
    { name: VOLUMES.state, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    { name: VOLUMES.output, emptyDir: { medium: 'Memory', sizeLimit: '4Mi' } },
    ...targets.map((target) => ({
      name: bootstrapVolume(target),
      secret: { secretName: target.bootstrapSecret.name, defaultMode: 0o444, optional: true },
    })),
  ];
}
