// A local Kubernetes control plane for tests and the demo: etcd, kube-apiserver and kube-controller-manager
// as detached processes on loopback, with a generated CA. The state of each named cluster lives in
// <root>/<name>/state.json, so `up` and `down` can run from different processes.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { renderKubeconfig } from '../../src/core/kubeconfig/render.ts';
import type { NodeRecord } from './node.ts';
import { createCertificateAuthority, createServiceAccountKeys, issueCertificate, type PemPair } from './pki.ts';
import { freePorts, isRunning, spawnDetached, stopProcess, tailOfFile } from './processes.ts';

export const COMPONENTS = ['etcd', 'kube-apiserver', 'kube-controller-manager'] as const;
export type Component = (typeof COMPONENTS)[number];

export const KCM_CONTROLLERS = [
  'csrsigning',
  'csrapproving',
  'csrcleaner',
  'tokencleaner',
  // ServiceAccount admission needs each namespace's default ServiceAccount to exist before Pods are created.
  'serviceaccount',
  'root-ca-cert-publisher',
  // Fills the aggregated ClusterRoles (view, edit, admin) that users bind identities to.
  'clusterrole-aggregation',
];

export interface ProcessRecord {
  readonly pid: number;
  readonly bin: string;
  readonly args: readonly string[];
  readonly log: string;
}

export interface ClusterState {
  readonly name: string;
  readonly dir: string;
  /** https://127.0.0.1:<port>, or the node's address for a cluster with a node */
  readonly server: string;
  /** Admin (system:masters) kubeconfig with file references. */
  readonly kubeconfig: string;
  readonly caCertFile: string;
  readonly caKeyFile: string;
  readonly ports: { etcdClient: number; etcdPeer: number; apiserver: number; controllerManager: number };
  readonly processes: Partial<Record<Component, ProcessRecord>>;
  /** A cluster with a node (node.ts): its namespace, cgroups and node processes. */
  readonly node?: NodeRecord;
}

export interface StartOptions {
  /** Directory holding etcd, kube-apiserver, kube-controller-manager. */
  readonly binDir: string;
  /** Parent of the per-cluster state directories. */
  readonly root: string;
  readonly onProgress?: (message: string) => void;
  readonly readinessTimeoutMs?: number;
  /**
   * kube-apiserver flags after the testbed's own, given the new cluster's state (its server URL is known
   * before it starts): a target trusting another cluster's token issuer gets `--authentication-config`.
   */
  readonly apiserverFlags?: (state: ClusterState) => readonly string[];
  /** The apiserver's listen and advertise address (default 127.0.0.1). */
  readonly address?: string;
  /** kube-controller-manager's --controllers (default KCM_CONTROLLERS). */
  readonly controllers?: readonly string[];
  /** Set for a cluster with a node: its directory already holds the namespace's records, so it is kept. */
  readonly node?: NodeRecord;
}

const PORTS_PER_CLUSTER = 4;

export function clusterDir(root: string, name: string): string {
  return join(root, name);
}

export function readClusterState(root: string, name: string): ClusterState | undefined {
  const file = join(clusterDir(root, name), 'state.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
}

export function writeClusterState(state: ClusterState): void {
  writeFileSync(join(state.dir, 'state.json'), JSON.stringify(state, null, 2));
}

export function isComponentRunning(state: ClusterState, component: Component): boolean {
  const record = state.processes[component];
  return record !== undefined && isRunning(record.pid, state.dir);
}

export function isClusterRunning(state: ClusterState): boolean {
  return COMPONENTS.every((component) => isComponentRunning(state, component));
}

/** The named clusters that are running now, so a caller can stop later only the ones it started. */
export function runningClusters(root: string, names: readonly string[]): string[] {
  return names.filter((name) => {
    const state = readClusterState(root, name);
    return state !== undefined && isClusterRunning(state);
  });
}

/**
 * Starts the named clusters (in parallel), reusing any that already run and answer readiness checks.
 * Returns their states in the order given.
 */
export async function startClusters(names: readonly string[], options: StartOptions): Promise<ClusterState[]> {
  const reusable = await Promise.all(names.map((name) => reusableCluster(options.root, name)));
  const toStart = names.filter((_, i) => reusable[i] === undefined);
  const ports = await freePorts(toStart.length * PORTS_PER_CLUSTER);
  const started = await Promise.all(
    toStart.map((name, i) =>
      startCluster(name, ports.slice(i * PORTS_PER_CLUSTER, (i + 1) * PORTS_PER_CLUSTER), options),
    ),
  );
  return names.map((name, i) => reusable[i] ?? started[toStart.indexOf(name)] ?? fail(`cluster ${name} did not start`));
}

/** Starts one cluster's control plane, never reusing or removing what its directory holds (node.ts). */
export async function startControlPlane(name: string, options: StartOptions): Promise<ClusterState> {
  return startCluster(name, await freePorts(PORTS_PER_CLUSTER), options);
}

function fail(message: string): never {
  throw new Error(message);
}

async function reusableCluster(root: string, name: string): Promise<ClusterState | undefined> {
  const state = readClusterState(root, name);
  if (state === undefined) return undefined;
  // A running cluster may be slow to answer while another process loads it: give it time before
  // concluding it is broken and starting over (which would pull it from under that process).
  if (isClusterRunning(state) && (await waitUntil(() => probe(state, 'kube-apiserver'), REUSE_READINESS_MS)))
    return state;
  await stopCluster(root, name);
  return undefined;
}

const REUSE_READINESS_MS = 60_000;

async function startCluster(name: string, ports: readonly number[], options: StartOptions): Promise<ClusterState> {
  const [etcdClient, etcdPeer, apiserver, controllerManager] = ports;
  if (
    etcdClient === undefined ||
    etcdPeer === undefined ||
    apiserver === undefined ||
    controllerManager === undefined
  ) {
    throw new Error(`expected ${PORTS_PER_CLUSTER} ports, got ${ports.length}`);
  }
  const dir = clusterDir(options.root, name);
  if (options.node === undefined) rmSync(dir, { recursive: true, force: true });
  for (const sub of ['pki', 'logs', 'etcd-data', 'kcm-certs'])
    mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  const progress = (message: string) => options.onProgress?.(`[${name}] ${message}`);

  const address = options.address ?? '127.0.0.1';
  const files = writePki(dir, name, address);
  const server = `https://${address}:${String(apiserver)}`;
  const kubeconfig = join(dir, 'admin.kubeconfig');
  writeClientKubeconfig(kubeconfig, name, server, files.caCert, files.admin);
  const kcmKubeconfig = join(dir, 'kube-controller-manager.kubeconfig');
  writeClientKubeconfig(kcmKubeconfig, name, server, files.caCert, files.controllerManager);

  let state: ClusterState = {
    name,
    dir,
    server,
    kubeconfig,
    caCertFile: files.caCert,
    caKeyFile: files.caKey,
    ports: { etcdClient, etcdPeer, apiserver, controllerManager },
    processes: {},
    ...(options.node === undefined ? {} : { node: options.node }),
  };
  writeClusterState(state);
  const commandLines: Record<Component, string[]> = {
    etcd: etcdArgs(state),
    'kube-apiserver': [...apiserverArgs(state, files, address), ...(options.apiserverFlags?.(state) ?? [])],
    'kube-controller-manager': controllerManagerArgs(state, kcmKubeconfig, files, options.controllers),
  };
  try {
    for (const component of COMPONENTS) {
      progress(`starting ${component}`);
      const started = Date.now();
      state = await launch(state, component, join(options.binDir, component), commandLines[component], options);
      progress(`${component} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    await waitForSystemNamespace(state, options.readinessTimeoutMs ?? 180_000);
  } catch (error) {
    await stopProcesses(state);
    throw error;
  }
  return state;
}

interface PkiFiles {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  saPublic: string;
  saPrivate: string;
  admin: { cert: string; key: string };
  controllerManager: { cert: string; key: string };
}

function writePki(dir: string, name: string, address: string): PkiFiles {
  const pki = join(dir, 'pki');
  const write = (file: string, content: string) => {
    writeFileSync(join(pki, file), content, { mode: 0o600 });
    return join(pki, file);
  };
  const writePair = (base: string, pair: PemPair) => ({
    cert: write(`${base}.crt`, pair.cert),
    key: write(`${base}.key`, pair.key),
  });
  const ca = createCertificateAuthority(`kubeconfig-rotator-testbed-${name}-ca`);
  const serving = writePair(
    'apiserver',
    issueCertificate(ca, {
      commonName: 'kube-apiserver',
      usage: 'server',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      ipAddresses: [...new Set(['127.0.0.1', '10.0.0.1', address])],
    }),
  );
  const sa = createServiceAccountKeys();
  const caFiles = writePair('ca', ca);
  return {
    caCert: caFiles.cert,
    caKey: caFiles.key,
    servingCert: serving.cert,
    servingKey: serving.key,
    saPublic: write('sa.pub', sa.publicKey),
    saPrivate: write('sa.key', sa.privateKey),
    admin: writePair(
      'admin',
      issueCertificate(ca, { commonName: 'kubernetes-admin', organizations: ['system:masters'], usage: 'client' }),
    ),
    // Every controller acts as this identity (--use-service-account-credentials=false).
    controllerManager: writePair(
      'kube-controller-manager',
      issueCertificate(ca, {
        commonName: 'system:kube-controller-manager',
        organizations: ['system:masters'],
        usage: 'client',
      }),
    ),
  };
}

function writeClientKubeconfig(
  path: string,
  name: string,
  server: string,
  caFile: string,
  pair: { cert: string; key: string },
): void {
  const content = renderKubeconfig({
    name,
    server,
    certificateAuthority: { file: caFile },
    credential: { clientCertificate: { file: pair.cert }, clientKey: { file: pair.key } },
  });
  writeFileSync(path, content, { mode: 0o600 });
}

function etcdArgs(state: ClusterState): string[] {
  const client = `http://127.0.0.1:${String(state.ports.etcdClient)}`;
  const peer = `http://127.0.0.1:${String(state.ports.etcdPeer)}`;
  return [
    `--name=${state.name}`,
    `--data-dir=${join(state.dir, 'etcd-data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${state.name}=${peer}`,
    // Test data is thrown away; fsync would only slow every write.
    '--unsafe-no-fsync',
    '--log-level=warn',
  ];
}

function apiserverArgs(state: ClusterState, files: PkiFiles, address: string): string[] {
  return [
    `--etcd-servers=http://127.0.0.1:${String(state.ports.etcdClient)}`,
    `--bind-address=${address}`,
    `--advertise-address=${address}`,
    // No endpoints for the kubernetes Service: nothing here reaches the apiserver through it (no kube-proxy;
    // a node's pods do through a DNAT rule, node-inside.ts), and from 1.37 the reconcilers that write them
    // refuse a loopback address.
    '--endpoint-reconciler-type=none',
    `--secure-port=${String(state.ports.apiserver)}`,
    `--tls-cert-file=${files.servingCert}`,
    `--tls-private-key-file=${files.servingKey}`,
    `--client-ca-file=${files.caCert}`,
    '--authorization-mode=Node,RBAC',
    '--enable-bootstrap-token-auth',
    `--service-account-issuer=${state.server}`,
    `--service-account-key-file=${files.saPublic}`,
    `--service-account-signing-key-file=${files.saPrivate}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    '--profiling=false',
  ];
}

function controllerManagerArgs(
  state: ClusterState,
  kubeconfig: string,
  files: PkiFiles,
  controllers: readonly string[] = KCM_CONTROLLERS,
): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--controllers=${controllers.join(',')}`,
    // Issued client certificates must be trusted by --client-ca-file, so sign with that same CA.
    `--cluster-signing-cert-file=${files.caCert}`,
    `--cluster-signing-key-file=${files.caKey}`,
    `--root-ca-file=${files.caCert}`,
    '--use-service-account-credentials=false',
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${String(state.ports.controllerManager)}`,
    `--cert-dir=${join(state.dir, 'kcm-certs')}`,
    '--profiling=false',
  ];
}

async function launch(
  state: ClusterState,
  component: Component,
  bin: string,
  args: readonly string[],
  options: Pick<StartOptions, 'readinessTimeoutMs'>,
): Promise<ClusterState> {
  const log = join(state.dir, 'logs', `${component}.log`);
  const spawned = spawnDetached(bin, args, log);
  const next: ClusterState = {
    ...state,
    processes: { ...state.processes, [component]: { pid: spawned.pid, bin, args, log } },
  };
  writeClusterState(next);
  const timeoutMs = options.readinessTimeoutMs ?? 180_000;
  const outcome = await Promise.race([
    spawned.exited.then((how) => `${component} ${how}`),
    waitUntil(() => probe(next, component), timeoutMs).then((ready) =>
      ready ? undefined : `${component} did not become ready within ${String(timeoutMs / 1000)} s`,
    ),
  ]);
  if (outcome !== undefined) {
    throw new Error(`cluster ${state.name}: ${outcome}; last lines of ${log}:\n${tailOfFile(log)}`);
  }
  return next;
}

/** Stops one component (e.g. to simulate an apiserver outage); startComponent brings it back on the same port. */
export async function stopComponent(state: ClusterState, component: Component): Promise<void> {
  const record = state.processes[component];
  if (record !== undefined) await stopProcess(record.pid, state.dir);
}

export async function startComponent(state: ClusterState, component: Component): Promise<ClusterState> {
  const record = state.processes[component];
  if (record === undefined) throw new Error(`cluster ${state.name} has no recorded ${component}`);
  if (isComponentRunning(state, component)) return state;
  return launch(state, component, record.bin, record.args, {});
}

export async function stopCluster(root: string, name: string): Promise<boolean> {
  const state = readClusterState(root, name);
  if (state === undefined) return false;
  await stopProcesses(state);
  rmSync(state.dir, { recursive: true, force: true });
  return true;
}

async function stopProcesses(state: ClusterState): Promise<void> {
  // Reverse order: the controller manager first, etcd last, so nothing logs errors about a vanished peer.
  for (const component of [...COMPONENTS].reverse()) await stopComponent(state, component);
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(200);
  }
  return false;
}

async function waitForSystemNamespace(state: ClusterState, timeoutMs: number): Promise<void> {
  const found = await waitUntil(
    async () => (await get(state, '/api/v1/namespaces/kube-system')).status === 200,
    timeoutMs,
  );
  if (!found)
    throw new Error(
      `cluster ${state.name}: namespace kube-system was not created within ${String(timeoutMs / 1000)} s`,
    );
}

/** One readiness check per component; the apiserver is asked with the admin credential. */
export async function probe(state: ClusterState, component: Component): Promise<boolean> {
  switch (component) {
    case 'etcd': {
      const answer = await plainGet(`http://127.0.0.1:${String(state.ports.etcdClient)}/health`);
      return answer.status === 200 && answer.body.includes('"health":"true"');
    }
    case 'kube-apiserver': {
      const answer = await get(state, '/readyz');
      return answer.status === 200 && answer.body === 'ok';
    }
    case 'kube-controller-manager':
      return insecureHealthz(`https://127.0.0.1:${String(state.ports.controllerManager)}/healthz`);
  }
}

/** A component's own /healthz on loopback (its self-signed serving certificate is not checked). */
export async function insecureHealthz(url: string): Promise<boolean> {
  const answer = await tlsGet(url, { rejectUnauthorized: false });
  return answer.status === 200 && answer.body === 'ok';
}

interface Answer {
  status: number;
  body: string;
}

/** GET on the apiserver as the admin. */
export function get(state: ClusterState, path: string): Promise<Answer> {
  const pki = join(state.dir, 'pki');
  return tlsGet(`${state.server}${path}`, {
    ca: readFileSync(state.caCertFile),
    cert: readFileSync(join(pki, 'admin.crt')),
    key: readFileSync(join(pki, 'admin.key')),
  });
}

function tlsGet(
  url: string,
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean },
): Promise<Answer> {
  return collect((done) => httpsRequest(url, { ...tls, timeout: 5000 }, done));
}

function plainGet(url: string): Promise<Answer> {
  return collect((done) => httpRequest(url, { timeout: 5000 }, done));
}

/** Runs a request and gathers its answer; a connection error is status 0 (not ready yet). */
function collect(
  start: (done: (response: import('node:http').IncomingMessage) => void) => import('node:http').ClientRequest,
): Promise<Answer> {
  return new Promise((resolve) => {
    const request = start((response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        resolve({ status: response.statusCode ?? 0, body });
      });
      response.on('error', () => {
        resolve({ status: 0, body });
      });
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => {
      resolve({ status: 0, body: '' });
    });
    request.end();
  });
}
