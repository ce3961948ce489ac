// The network + mount namespace and the cgroups of a cluster with a node (node.ts): made, identified and
// removed by the testbed alone, so that nothing of a node reaches the host (no packet, no mount, no host
// sysctl, no write to a cgroup hierarchy's root) and `down` can prove that nothing is left.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnDetached } from './processes.ts';

export interface NamespaceHolder {
  /** A process that does nothing but keep the namespaces alive; every other node process joins them. */
  readonly pid: number;
  /** `net:[inode]` and `mnt:[inode]` as /proc/<pid>/ns/* read: what identifies the namespaces (not the pid). */
  readonly netns: string;
  readonly mntns: string;
}

/** The cgroup v1 hierarchies the kubelet checks or runc joins, and cgroup2's `unified` (runc in hybrid mode). */
const HIERARCHIES = ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'systemd', 'unified'];
const CGROUP_FS = '/sys/fs/cgroup';

/**
 * Starts the holder: `unshare` makes a new network and mount namespace (mounts private, so nothing made in it
 * propagates back) and execs `sleep` in it. No --fork: only a PID namespace needs a child, so the pid spawned
 * is the holder itself. Resolves once the exec happened, so the namespaces read are the new ones.
 */
export async function startHolder(logFile: string): Promise<NamespaceHolder> {
  const own = namespaceOf(process.pid);
  const spawned = spawnDetached(
    'unshare',
    ['--net', '--mount', '--propagation', 'private', '--', 'sleep', 'infinity'],
    logFile,
  );
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ns = namespaceOf(spawned.pid);
    if (ns !== undefined && ns.netns !== own?.netns && readComm(spawned.pid) === 'sleep')
      return { pid: spawned.pid, ...ns };
    if (Date.now() > deadline || !alive(spawned.pid))
      throw new Error(`the namespace holder (unshare, pid ${String(spawned.pid)}) did not start; see ${logFile}`);
    await sleep(20);
  }
}

export function namespaceOf(pid: number): { netns: string; mntns: string } | undefined {
  try {
    return {
      netns: readlinkSync(`/proc/${String(pid)}/ns/net`),
      mntns: readlinkSync(`/proc/${String(pid)}/ns/mnt`),
    };
  } catch {
    return undefined;
  }
}

export function holderAlive(holder: NamespaceHolder): boolean {
  return alive(holder.pid) && namespaceOf(holder.pid)?.netns === holder.netns;
}

function readComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${String(pid)}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie: an exited daemon whose reaper (PID 1 here) has not collected it yet is gone. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    const state = stat.charAt(stat.lastIndexOf(')') + 2);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

/** Every live process in the holder's mount or network namespace, the holder included. */
export function processesInNamespace(holder: Pick<NamespaceHolder, 'netns' | 'mntns'>): number[] {
  return allPids().filter((pid) => {
    const ns = namespaceOf(pid);
    return ns !== undefined && (ns.mntns === holder.mntns || ns.netns === holder.netns) && alive(pid);
  });
}

/** What an `ip`, `mount` or `iptables` call in the namespace does; fails with the command and its stderr. */
export function run(command: string, args: readonly string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || (error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * The kernel settings the kubelet checks and would otherwise write, host-wide (with protectKernelDefaults it
 * fails instead): read-only bind mounts of files with the expected values, in this mount namespace only.
 */
const KUBELET_SYSCTLS: readonly (readonly [string, string])[] = [
  ['vm/overcommit_memory', '1'],
  ['vm/panic_on_oom', '0'],
  ['kernel/panic', '10'],
  ['kernel/panic_on_oops', '1'],
  ['kernel/keys/root_maxkeys', '1000000'],
  ['kernel/keys/root_maxbytes', '25000000'],
];

/**
 * Prepares the namespace this process runs in (entered with nsenter): loopback up, a veth pair carrying the
 * node's address (no default route, so no packet can leave), private tmpfs over the paths containerd, libcni
 * and the kubelet hard-code and over `imageStore` (containerd's images and snapshots: they go with the
 * namespace instead of costing seconds of file removal at `down`), the sysctl bind mounts, and IP
 * forwarding for the pods (per network namespace).
 * Refuses to run anywhere but inside the given holder's namespaces: these mounts over the host's /run would
 * be a disaster.
 */
export function prepareNamespace(holder: NamespaceHolder, address: string, scratch: string, imageStore: string): void {
  const self = namespaceOf(process.pid);
  if (self?.netns !== holder.netns || self.mntns !== holder.mntns)
    throw new Error(`refusing to prepare a namespace from outside it (we are in ${JSON.stringify(self)})`);
  run('ip', ['link', 'set', 'lo', 'up']);
  run('ip', ['link', 'add', 'kcr0', 'type', 'veth', 'peer', 'name', 'kcr1']);
  run('ip', ['addr', 'add', `${address}/24`, 'dev', 'kcr0']);
  run('ip', ['link', 'set', 'kcr1', 'up']);
  run('ip', ['link', 'set', 'kcr0', 'up']);
  // -n: util-linux's mount would otherwise create its lock directory /run/mount on the host's /run first.
  mkdirSync(imageStore, { recursive: true, mode: 0o700 });
  for (const [path, size, source] of [
    ['/run', '64m', 'kcr-node-run'],
    ['/var/log', '256m', 'kcr-node-var-log'],
    ['/var/lib', '64m', 'kcr-node-var-lib'],
    [imageStore, '4g', 'kcr-node-images'],
  ] as const)
    run('mount', ['-n', '-t', 'tmpfs', '-o', `mode=755,size=${size}`, source, path]);
  mkdirSync(scratch, { recursive: true });
  for (const [key, value] of KUBELET_SYSCTLS) {
    const path = `/proc/sys/${key}`;
    if (readFileSync(path, 'utf8').trim() === value) continue;
    const file = join(scratch, key.replaceAll('/', '.'));
    writeFileSync(file, `${value}\n`);
    run('mount', ['-n', '--bind', file, path]);
    run('mount', ['-n', '-o', 'remount,bind,ro', path]);
  }
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
}

/** Our own cgroup path in each hierarchy, as /proc/self/cgroup says (cgroup2's line names no controller). */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined) continue;
    if (controllers === '') own.set('unified', path);
    for (const controller of controllers.split(',')) own.set(controller.replace(/^name=/, ''), path);
  }
  return own;
}

/** Our own memory cgroup: in this machine's hybrid layout the only hierarchy where we have a path of our own. */
export function ownMemoryCgroup(): string {
  const path = ownCgroups().get('memory');
  if (path === undefined) throw new Error('no memory cgroup in /proc/self/cgroup: cgroup v1 hierarchies expected');
  return path;
}

/**
 * Makes `root` (below our own memory cgroup path) in every hierarchy, as the kubelet wants one cgroupRoot in
 * all of them; cpuset.cpus/mems are copied down (a v1 cpuset without them takes no task). Returns the
 * directories this cluster answers for, parents first: in each hierarchy, those of `root`'s path below our
 * own cgroup there, whether made now or by another node cluster still running (so the last one down removes
 * the shared parents). `record` sees the list before any directory is made, so a failed start removes them.
 */
export function makeCgroupRoot(root: string, record: (managed: readonly string[]) => void): string[] {
  const own = ownCgroups();
  const managed: string[] = [];
  for (const hierarchy of HIERARCHIES) {
    const ownPath = own.get(hierarchy) ?? '/';
    let path = '/';
    for (const part of root.split('/').filter((segment) => segment !== '')) {
      path = join(path, part);
      const beneathOwn = ownPath === '/' || path.startsWith(`${ownPath}/`);
      if (beneathOwn) managed.push(join(CGROUP_FS, hierarchy, path));
    }
  }
  record(managed);
  for (const dir of managed) {
    try {
      mkdirSync(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw new Error(`cannot create cgroup ${dir}`, { cause: error });
    }
    if (dir.startsWith(join(CGROUP_FS, 'cpuset/')))
      for (const file of ['cpuset.cpus', 'cpuset.mems'])
        writeFileSync(join(dir, file), readFileSync(join(dirname(dir), file)));
  }
  return managed;
}

/** Every process in a cgroup at or below `root`, in any hierarchy. */
export function processesInCgroups(root: string): number[] {
  const pids = new Set<number>();
  for (const dir of cgroupTree(root)) {
    try {
      for (const line of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n'))
        if (line !== '' && alive(Number(line))) pids.add(Number(line));
    } catch {
      // removed meanwhile
    }
  }
  return [...pids];
}

/** `root` and every cgroup below it, in every hierarchy mounted under /sys/fs/cgroup, deepest first. */
function cgroupTree(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) if (entry.isDirectory()) walk(join(dir, entry.name));
    found.push(dir);
  };
  for (const hierarchy of readdirSync(CGROUP_FS)) walk(join(CGROUP_FS, hierarchy, root));
  return found;
}

/**
 * Removes what the kubelet and runc made below `root` (leaf first), then the directories makeCgroupRoot
 * answers for, deepest first. A parent another running node cluster still uses (EBUSY) is left to that one.
 * Returns the directories that could not be removed.
 */
export function removeCgroups(root: string, managed: readonly string[]): string[] {
  const left: string[] = [];
  const remove = (dir: string, busyIsOk: boolean) => {
    try {
      rmdirSync(dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || (busyIsOk && (code === 'EBUSY' || code === 'ENOTEMPTY'))) return;
      left.push(`${dir} (${String(code)})`);
    }
  };
  for (const dir of cgroupTree(root)) remove(dir, false);
  const leaves = new Set(HIERARCHIES.map((hierarchy) => join(CGROUP_FS, hierarchy, root)));
  for (const dir of [...managed].sort((a, b) => b.length - a.length)) remove(dir, !leaves.has(dir));
  return left;
}

/** SIGTERM (or SIGKILL) to each pid that is still alive; errors for pids that vanished meanwhile are ignored. */
export function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // exited meanwhile
    }
  }
}

/** Waits until `list()` is empty; false when `timeoutMs` passed first. */
export async function waitUntilNone(list: () => readonly number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (list().length > 0) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}
