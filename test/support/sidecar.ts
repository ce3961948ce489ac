// Running the sidecar as users do (a spawned `kubeconfig-rotator sidecar` process) against the test
// clusters, with a stand-in for the approver: the admin credential approving (or denying) the CSRs of one
// target. Every process's log is kept, so tests can assert on it and on what it must never contain.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CertificatesV1Api, RbacAuthorizationV1Api, type KubeConfig, type V1CertificateSigningRequest } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { renderKubeconfig } from '../../src/core/kubeconfig/render.ts';
import type { TestCluster } from './clusters.ts';
import { createBootstrapToken, uniqueName, type TestBootstrapToken } from './kube.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

export interface Identity {
  readonly commonName: string;
  readonly organizations: readonly string[];
}

export interface PreparedTarget {
  /** Unique target name; the sidecar labels its CSRs with it. */
  readonly name: string;
  readonly identity: Identity;
  readonly bootstrap: TestBootstrapToken;
  readonly bootstrapKubeconfig: string;
  readonly dir: string;
}

/**
 * A bootstrap token and its kubeconfig file for one target, and RBAC letting the identity itself request
 * CSRs (renewals are made with the current certificate).
 */
export async function prepareTarget(target: TestCluster, options: { expiration?: Date } = {}): Promise<PreparedTarget> {
  const admin = target.admin();
  const name = uniqueName('t');
  const identity = { commonName: `kcr-agent-${name}`, organizations: ['kcr-agents'] };
  const bootstrap = await createBootstrapToken(admin, options.expiration === undefined ? {} : { expiration: options.expiration });
  await admin.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: `kcr-test-renewal-${name}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `kcr-test-csr-requester-${bootstrap.token.id}` },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: identity.commonName }],
    },
  });
  const dir = mkdtempSync(join(tmpdir(), `kcr-${name}-`));
  // Laid out as the kubelet mounts a Secret, so updates arrive as ..data symlink swaps.
  mountLikeSecret(join(dir, 'bootstrap'), { kubeconfig: bootstrapKubeconfigFor(target, bootstrap.value) });
  return { name, identity, bootstrap, bootstrapKubeconfig: join(dir, 'bootstrap', 'kubeconfig'), dir };
}

export function bootstrapKubeconfigFor(target: TestCluster, token: string): string {
  return renderKubeconfig({
    name: 'target',
    server: target.state.server,
    certificateAuthority: { pem: readFileSync(target.state.caCertFile, 'utf8') },
    credential: { token },
  });
}

/**
 * Writes files the way the kubelet updates a mounted Secret or ConfigMap: a new version directory, a
 * ..data symlink renamed over the old one, stable links to ..data/<file>, the old version removed.
 */
export function mountLikeSecret(dir: string, files: Readonly<Record<string, string>>): void {
  mkdirSync(dir, { recursive: true });
  const previous = existsSync(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
  const version = `..${new Date().toISOString().replace(/[-:T.Z]/g, '_')}${uniqueName('v')}`;
  mkdirSync(join(dir, version));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, version, name), content, { mode: 0o600 });
  symlinkSync(version, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) if (!existsSync(join(dir, name))) symlinkSync(join('..data', name), join(dir, name));
  if (previous !== undefined) rmSync(join(dir, previous), { recursive: true, force: true });
}

export interface SidecarConfigOptions {
  readonly directory?: boolean | { embed: boolean };
  readonly secret?: { namespace: string; name: string };
  readonly sourceKubeconfig?: string;
  readonly expirationSeconds?: number;
  readonly forceIntervalSeconds?: number;
  readonly approvalTimeoutSeconds?: number;
  readonly rereadIntervalSeconds?: number;
  readonly keyAlgorithm?: string;
  readonly port?: number;
  readonly logLevel?: 'debug' | 'trace';
}

/**
 * Writes a config for prepared targets (the first one's directory holds the config and the state); returns
 * its path. Each target publishes to its own DIR/out.
 */
export function writeSidecarConfig(prepared: PreparedTarget | readonly PreparedTarget[], options: SidecarConfigOptions = {}): string {
  const all: readonly PreparedTarget[] = 'dir' in prepared ? [prepared] : prepared;
  const [home] = all;
  if (home === undefined) throw new Error('no target to configure');
  const directory = options.directory ?? true;
  const config = {
    stateDir: join(home.dir, 'state'),
    listen: { host: '127.0.0.1', port: options.port ?? 0 },
    logLevel: options.logLevel ?? 'debug',
    rereadIntervalSeconds: options.rereadIntervalSeconds ?? 2,
    ...(options.sourceKubeconfig === undefined ? {} : { sourceKubeconfig: options.sourceKubeconfig }),
    targets: all.map((one) => ({
      name: one.name,
      bootstrapKubeconfig: one.bootstrapKubeconfig,
      identity: one.identity,
      expirationSeconds: options.expirationSeconds ?? 600,
      ...(options.keyAlgorithm === undefined ? {} : { keyAlgorithm: options.keyAlgorithm }),
      ...(options.approvalTimeoutSeconds === undefined ? {} : { approvalTimeoutSeconds: options.approvalTimeoutSeconds }),
      rotation: { minRemainingSeconds: 60, ...(options.forceIntervalSeconds === undefined ? {} : { forceIntervalSeconds: options.forceIntervalSeconds }) },
      sinks: {
        ...(directory === false ? {} : { directory: { path: outputDir(one), embed: typeof directory === 'object' && directory.embed } }),
        ...(options.secret === undefined ? {} : { secret: options.secret }),
      },
    })),
  };
  const path = join(home.dir, 'config.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

export const outputDir = (prepared: PreparedTarget) => join(prepared.dir, 'out');

export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A running sidecar process; its JSON log lines are parsed as they come. */
export class SidecarProcess {
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stderr = '';

  constructor(configPath: string, options: { once?: boolean; env?: NodeJS.ProcessEnv; logDir: string }) {
    this.logFile = join(options.logDir, `${uniqueName('sidecar')}.log`);
    const args = [CLI, 'sidecar', '--config', configPath, ...(options.once === true ? ['--once'] : [])];
    this.child = spawn(process.execPath, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(this.logFile);
    let partial = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      log.write(chunk);
      partial += chunk;
      const complete = partial.split('\n');
      partial = complete.pop() ?? '';
      for (const line of complete) if (line.trim() !== '') this.lines.push(JSON.parse(line) as LogLine);
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      log.write(chunk);
      this.#stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        log.end();
        resolve({ code, signal });
      });
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves with the first log line (already seen or coming) that matches. */
  async waitForLog(match: (line: LogLine) => boolean, timeoutMs = 30_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found !== undefined) return found;
      if (this.child.exitCode !== null) throw new Error(`sidecar exited (${String(this.child.exitCode)}) before the expected log line; stderr: ${this.#stderr}`);
      if (Date.now() > deadline) throw new Error(`no matching log line within ${String(timeoutMs)} ms; last lines:\n${this.lines.slice(-5).map((line) => JSON.stringify(line)).join('\n')}`);
      await sleep(50);
    }
  }

  count(match: (line: LogLine) => boolean): number {
    return this.lines.filter(match).length;
  }

  /** The probe server's port, from the startup log line. */
  async port(): Promise<number> {
    const line = await this.waitForLog((entry) => entry.msg === 'serving /healthz, /readyz and /metrics');
    return Number(String(line.address).split(':').pop());
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

export const rotated = (line: LogLine) => line.msg === 'certificate rotated';

export type CsrDecision = 'approve' | 'deny' | 'ignore';

/**
 * Stands in for the approver: decides the CSRs of one target (by the sidecar's target label) with the admin
 * credential, as `decide` says. Records every CSR it saw.
 */
export class TestApprover {
  readonly seen = new Map<string, V1CertificateSigningRequest>();
  decide: (csr: V1CertificateSigningRequest) => CsrDecision = () => 'approve';
  readonly #api: CertificatesV1Api;
  readonly #target: string;
  #running = true;
  readonly #loop: Promise<void>;

  readonly #pollMs: number;

  constructor(admin: KubeConfig, target: string, options: { pollMs?: number } = {}) {
    this.#api = admin.makeApiClient(CertificatesV1Api);
    this.#target = target;
    this.#pollMs = options.pollMs ?? 100;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (this.#running) {
      try {
        const list = await this.#api.listCertificateSigningRequest({ labelSelector: `kubeconfig-rotator.io/target=${this.#target}` });
        for (const csr of list.items) {
          const name = csr.metadata?.name ?? '';
          this.seen.set(name, csr);
          if ((csr.status?.conditions ?? []).length > 0) continue;
          const decision = this.decide(csr);
          if (decision === 'ignore') continue;
          const type = decision === 'approve' ? 'Approved' : 'Denied';
          await this.#api.replaceCertificateSigningRequestApproval({
            name,
            body: { ...csr, status: { conditions: [{ type, status: 'True', reason: `Test${type}`, message: `${type.toLowerCase()} by the test approver` }] } },
          });
        }
      } catch {
        // The target may be down on purpose; keep polling.
      }
      await sleep(this.#pollMs);
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }
}

/** Temporary directory for a test file's logs and outputs, removed with `dispose`. */
export function scratchDir(prefix: string): { path: string; dispose(): void } {
  const path = mkdtempSync(join(tmpdir(), `kcr-${prefix}-`));
  return {
    path,
    dispose: () => {
      rmSync(path, { recursive: true, force: true });
    },
  };
}
