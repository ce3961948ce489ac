// A cluster with a node: the testbed's control plane (cluster.ts) plus kube-scheduler, containerd (Debian's,
// with its own root, state and socket), the kubelet and the bridge CNI, so that real pods run. All of it runs
// inside a network + mount namespace this module makes (node-namespace.ts), with the kubelet's cgroups below
// our own memory cgroup. `up` runs in two halves: this side makes the namespace and the cgroups, then
// node-inside.ts, entered into the namespace with nsenter, starts every process (whatever it starts stays in
// the namespace, and its probes reach the apiserver on the node's address, which only exists in there).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from './binaries.ts';
import {
  clusterDir,
  COMPONENTS,
  isClusterRunning,
  readClusterState,
  stopComponent,
  stopCluster,
  type ClusterState,
  type ProcessRecord,
} from './cluster.ts';
import {
  alive,
  holderAlive,
  makeCgroupRoot,
  namespaceOf,
  ownMemoryCgroup,
  processesInCgroups,
  processesInNamespace,
  removeCgroups,
  signal,
  startHolder,
  waitUntilNone,
  type NamespaceHolder,
} from './node-namespace.ts';
import { isRunning, stopProcess } from './processes.ts';

export const NODE_COMPONENTS = ['kube-scheduler', 'containerd', 'kubelet'] as const;
export type NodeComponent = (typeof NODE_COMPONENTS)[number];

/** An OCI image archive to import into containerd's k8s.io namespace under `reference`. */
export interface ImageArchive {
  readonly path: string;
  readonly reference: string;
  /** The manifest's digest: a running cluster is reused only with the same images. */
  readonly digest?: string;
}

/** What the host side made (node.json, written before anything starts, so `down` can undo a failed `up`). */
export interface NodeNamespace {
  readonly nodeName: string;
  /** The node's address on its veth: the apiserver listens here, the kubelet and pods dial it. */
  readonly address: string;
  readonly holder: NamespaceHolder;
  /** The kubelet's cgroupRoot: below our own memory cgroup path, the same path in every hierarchy. */
  readonly cgroupRoot: string;
  /** Cgroup directories this cluster removes at `down` (node-namespace.ts makeCgroupRoot). */
  readonly cgroups: readonly string[];
}

export interface NodeRecord extends NodeNamespace {
  readonly binDir: string;
  readonly pauseImage: string;
  readonly images: readonly ImageArchive[];
  readonly containerdSocket: string;
  readonly processes: Partial<Record<NodeComponent, ProcessRecord>>;
}

export interface NodeStartOptions {
  /** etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl (build-controlplane.sh --node). */
  readonly binDir: string;
  readonly root: string;
  /** The sandbox (pause) image, named as containerd's sandbox_image, and the images pods use. */
  readonly pauseImage: ImageArchive;
  readonly images: readonly ImageArchive[];
  readonly onProgress?: (message: string) => void;
}

/** The node's address inside the namespace; the pods' range on the cni0 bridge is POD_SUBNET. */
export const NODE_ADDRESS = '10.200.0.2';
export const POD_SUBNET = '10.244.0.0/24';
/** The `kubernetes` Service's ClusterIP (cluster.ts: --service-cluster-ip-range=10.0.0.0/24). */
export const KUBERNETES_SERVICE_IP = '10.0.0.1';

const NODE_FILE = 'node.json';
const START_FILE = 'node-start.json';

export function readNodeNamespace(dir: string): NodeNamespace | undefined {
  const file = join(dir, NODE_FILE);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as NodeNamespace) : undefined;
}

/** Every process of the cluster, its node included, is running. */
export function isNodeClusterRunning(state: ClusterState): boolean {
  const node = state.node;
  if (node === undefined) return false;
  return (
    holderAlive(node.holder) &&
    isClusterRunning(state) &&
    NODE_COMPONENTS.every((component) => {
      const record = node.processes[component];
      return record !== undefined && isRunning(record.pid, state.dir);
    })
  );
}

/**
 * Starts the named cluster with a node, or returns it if it already runs whole; a broken one is removed and
 * started again. Throws after removing everything when the node does not turn Ready.
 */
export async function startNodeCluster(name: string, options: NodeStartOptions): Promise<ClusterState> {
  const existing = readClusterState(options.root, name);
  const wanted = [options.pauseImage, ...options.images].map((image) => `${image.reference}@${String(image.digest)}`);
  const imported = existing?.node?.images.map((image) => `${image.reference}@${String(image.digest)}`);
  if (existing !== undefined && isNodeClusterRunning(existing) && wanted.join() === imported?.join()) return existing;
  await stopNodeCluster(options.root, name);
  const dir = clusterDir(options.root, name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const progress = (message: string) => options.onProgress?.(`[${name}] ${message}`);
  const started = Date.now();
  try {
    const cgroupRoot = `${ownMemoryCgroup().replace(/\/$/, '')}/kcr-node-${name}`;
    let namespace: NodeNamespace = {
      nodeName: `${name}-node`,
      address: NODE_ADDRESS,
      holder: { pid: -1, netns: '', mntns: '' },
      cgroupRoot,
      cgroups: [],
    };
    const save = () => {
      writeFileSync(join(dir, NODE_FILE), JSON.stringify(namespace, null, 2));
    };
    makeCgroupRoot(cgroupRoot, (managed) => {
      namespace = { ...namespace, cgroups: managed };
      save();
    });
    namespace = { ...namespace, holder: await startHolder(join(dir, 'holder.log')) };
    save();
    progress(
      `namespace ${namespace.holder.netns} (holder pid ${String(namespace.holder.pid)}), cgroup root ${cgroupRoot}`,
    );
    writeFileSync(
      join(dir, START_FILE),
      JSON.stringify({ binDir: options.binDir, pauseImage: options.pauseImage, images: options.images }),
    );
    await runInNamespace(
      namespace.holder,
      [process.execPath, join(REPO_ROOT, 'scripts', 'testbed', 'node-inside.ts'), options.root, name],
      // Its lines carry the cluster's name already (cluster.ts), or need it.
      (line) => options.onProgress?.(line.startsWith(`[${name}]`) ? line : `[${name}] ${line}`),
    );
  } catch (error) {
    progress(`failed: removing what was started`);
    await stopNodeCluster(options.root, name);
    throw error;
  }
  const state = readClusterState(options.root, name);
  if (state === undefined || !isNodeClusterRunning(state))
    throw new Error(`cluster ${name}: the node's processes did not stay up; see ${join(dir, 'logs')}`);
  progress(`up with node ${state.node?.nodeName ?? ''} Ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return state;
}

/** The arguments that run a command inside the namespace (nsenter resets the working directory: --wd). */
export function nsenterArgs(holder: NamespaceHolder, command: readonly string[], cwd = process.cwd()): string[] {
  return ['--target', String(holder.pid), '--net', '--mount', `--wd=${cwd}`, '--', ...command];
}

/** Runs a command inside the namespace, its output lines to `onLine`; rejects with its last lines if it fails. */
export async function runInNamespace(
  holder: NamespaceHolder,
  command: readonly string[],
  onLine: (line: string) => void,
): Promise<void> {
  if (!holderAlive(holder)) throw new Error(`the namespace holder (pid ${String(holder.pid)}) is not running`);
  const child = spawn('nsenter', nsenterArgs(holder, command), { stdio: ['ignore', 'pipe', 'pipe'] });
  const last: string[] = [];
  const collect = (line: string) => {
    last.push(line);
    if (last.length > 30) last.shift();
    onLine(line);
  };
  createInterface({ input: child.stdout }).on('line', collect);
  createInterface({ input: child.stderr }).on('line', collect);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0)
    throw new Error(`${command.join(' ')} failed in the node's namespace (exit ${String(code)}):\n${last.join('\n')}`);
}

/**
 * Stops everything of a cluster with a node and removes its state: the kubelet first (it would restart what
 * goes), the containers (SIGTERM, as a kubelet would, then SIGKILL), containerd and the control plane by
 * recorded pid, anything else still in the namespace (runc shims) by pid, the holder last, so the network
 * namespace (veth, bridge, iptables rules) and the mount namespace (tmpfs, bind mounts, volume and rootfs
 * mounts) go with it; then the cgroup directories. Safe to run twice and after a failed `up`.
 * Returns false when there was no such cluster; a plain cluster (no node) is stopped as cluster.ts does.
 */
export async function stopNodeCluster(
  root: string,
  name: string,
  onProgress: (message: string) => void = () => undefined,
): Promise<boolean> {
  const dir = clusterDir(root, name);
  const namespace = readNodeNamespace(dir);
  if (namespace === undefined) return stopCluster(root, name);
  const own = namespaceOf(process.pid);
  if (own?.mntns === namespace.holder.mntns)
    throw new Error(`cluster ${name}: cannot be stopped from inside its own namespace`);
  const state = readClusterState(root, name);
  const processes = state?.node?.processes ?? {};
  const started = Date.now();
  const progress = (message: string) => {
    onProgress(`[${name}] ${message} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  };
  const stop = async (component: NodeComponent) => {
    const record = processes[component];
    if (record !== undefined) await stopProcess(record.pid, dir, 20_000);
  };
  // Every pid met on the way: a process being torn down has already left its cgroup and namespaces but is not
  // gone yet, so the end waits for these to exit too.
  const seen = new Set<number>();
  const remember = (pids: number[]) => {
    for (const pid of pids) seen.add(pid);
    return pids;
  };
  await stop('kubelet');
  progress('kubelet stopped');
  const containers = () => remember(processesInCgroups(namespace.cgroupRoot));
  signal(containers(), 'SIGTERM');
  // A container's PID 1 without a SIGTERM handler ignores it: killed after a short grace period.
  if (!(await waitUntilNone(containers, 5_000))) signal(containers(), 'SIGKILL');
  progress('containers stopped');
  await stop('containerd');
  await stop('kube-scheduler');
  if (state !== undefined) for (const component of [...COMPONENTS].reverse()) await stopComponent(state, component);
  progress('daemons stopped');
  // The shims, a container that outlived SIGKILL's delivery, the holder: by pid, until none is left.
  const leftovers = () =>
    remember([
      ...new Set([
        ...processesInCgroups(namespace.cgroupRoot),
        ...(namespace.holder.netns === '' ? [] : processesInNamespace(namespace.holder)),
        ...(holderAlive(namespace.holder) ? [namespace.holder.pid] : []),
      ]),
    ]);
  for (let round = 0; round < 5 && leftovers().length > 0; round++) {
    signal(leftovers(), 'SIGKILL');
    await waitUntilNone(leftovers, 2_000);
  }
  await waitUntilNone(() => [...seen].filter(alive), 10_000);
  const stillRunning = [...new Set([...leftovers(), ...[...seen].filter(alive)])];
  progress('namespace gone');
  const cgroupsLeft = removeCgroups(namespace.cgroupRoot, namespace.cgroups);
  progress('cgroups removed');
  const problems = [
    ...(stillRunning.length > 0 ? [`processes still running: ${stillRunning.join(', ')}`] : []),
    ...(cgroupsLeft.length > 0 ? [`cgroups not removed: ${cgroupsLeft.join(', ')}`] : []),
    ...(mountsUnder(dir).length > 0 ? [`mounts under ${dir}: ${mountsUnder(dir).join(', ')}`] : []),
  ];
  if (problems.length > 0) throw new Error(`cluster ${name}: not everything went: ${problems.join('; ')}`);
  rmSync(dir, { recursive: true, force: true });
  return true;
}

/** Mount points below `dir` that this process sees (a node's mounts are in its own namespace only). */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${dir}/`));
}

export function readStartOptions(dir: string): Pick<NodeStartOptions, 'binDir' | 'pauseImage' | 'images'> {
  return JSON.parse(readFileSync(join(dir, START_FILE), 'utf8')) as Pick<
    NodeStartOptions,
    'binDir' | 'pauseImage' | 'images'
  >;
}
