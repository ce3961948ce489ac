// Running the sidecar as users do (a spawned `kubeconfig-rotator sidecar` process) against the test
// clusters, with a stand-in for the approver: the admin credential approving (or denying) the CSRs of one
// target. Every process's log is kept, so tests can assert on it and on what it must never contain.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CertificatesV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from '@kubernetes/client-node';
import { after } from 'node:test';
import { stringify } from 'yaml';
import { assertNoSecretsInLogs } from './log-hygiene.ts';
import { renderKubeconfig } from '../../src/core/kubeconfig/render.ts';
import type { Workload } from '../../src/core/restart/workload.ts';
import { CliProcess, type LogLine } from '../../scripts/testbed/cli-process.ts';
import { writeKubeletMount } from '../../scripts/testbed/mount.ts';

export { writeKubeletMount };
import type { TestCluster } from './clusters.ts';
import { bindClusterRole, createBootstrapToken, eventually, uniqueName, type TestBootstrapToken } from './kube.ts';

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
  const bootstrap = await createBootstrapToken(
    admin,
    options.expiration === undefined ? {} : { expiration: options.expiration },
  );
  await bindClusterRole(admin, `kcr-test-renewal-${name}`, csrRequesterRole(bootstrap), identity.commonName);
  const dir = mkdtempSync(join(tmpdir(), `kcr-${name}-`));
  // Laid out as the kubelet mounts a Secret, so updates arrive as ..data symlink swaps.
  writeKubeletMount(join(dir, 'bootstrap'), { kubeconfig: bootstrapKubeconfigFor(target, bootstrap.value) });
  return { name, identity, bootstrap, bootstrapKubeconfig: join(dir, 'bootstrap', 'kubeconfig'), dir };
}

/** The CSR requester ClusterRole of a test bootstrap token (createBootstrapToken). */
const csrRequesterRole = (token: TestBootstrapToken) => `kcr-test-csr-requester-${token.token.id}`;

/** The identity may renew through `token`'s CSR role too (its first role goes with its first token). */
export async function bindRenewals(
  target: TestCluster,
  prepared: PreparedTarget,
  token: TestBootstrapToken,
): Promise<void> {
  await bindClusterRole(
    target.admin(),
    `kcr-test-renewal-${prepared.name}-${token.token.id}`,
    csrRequesterRole(token),
    prepared.identity.commonName,
  );
}

export function bootstrapKubeconfigFor(target: TestCluster, token: string): string {
  return renderKubeconfig({
    name: 'target',
    server: target.state.server,
    certificateAuthority: { pem: readFileSync(target.state.caCertFile, 'utf8') },
    credential: { token },
  });
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
  /** The restart action's workloads (every target). */
  readonly restart?: readonly Workload[];
}

/**
 * Writes a config for prepared targets (the first one's directory holds the config and the state); returns
 * its path. Each target publishes to its own DIR/out.
 */
/** The settings every test sidecar shares: state under `dir`, any free port, debug logs, a 2 s re-read. */
export function testSidecarSettings(dir: string, sourceKubeconfig?: string) {
  return {
    stateDir: join(dir, 'state'),
    listen: { host: '127.0.0.1', port: 0 },
    logLevel: 'debug',
    rereadIntervalSeconds: 2,
    ...(sourceKubeconfig === undefined ? {} : { sourceKubeconfig }),
  };
}

/** A stand-in for the sidecar's pod in the source (nothing runs it), so its Events have something to be about. */
export async function createPodStandIn(source: TestCluster, namespace: string, name: string): Promise<void> {
  const core = source.admin().makeApiClient(CoreV1Api);
  await eventually(() =>
    core.createNamespacedPod({
      namespace,
      body: { metadata: { name }, spec: { containers: [{ name: 'agent', image: 'agent:test' }] } },
    }),
  );
}

/** DIR/config.yaml: the tests' sidecar settings (testSidecarSettings, with the source) and these targets; its path. */
export function writeTargetsConfig(
  dir: string,
  sourceKubeconfig: string,
  targets: readonly Record<string, unknown>[],
): string {
  const path = join(dir, 'config.yaml');
  writeFileSync(path, stringify({ ...testSidecarSettings(dir, sourceKubeconfig), targets }));
  return path;
}

export function writeSidecarConfig(
  prepared: PreparedTarget | readonly PreparedTarget[],
  options: SidecarConfigOptions = {},
): string {
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
      ...(options.approvalTimeoutSeconds === undefined
        ? {}
        : { approvalTimeoutSeconds: options.approvalTimeoutSeconds }),
      rotation: {
        minRemainingSeconds: 60,
        ...(options.forceIntervalSeconds === undefined ? {} : { forceIntervalSeconds: options.forceIntervalSeconds }),
      },
      ...(options.restart === undefined ? {} : { restart: options.restart }),
      sinks: {
        ...(directory === false
          ? {}
          : { directory: { path: outputDir(one), embed: typeof directory === 'object' && directory.embed } }),
        ...(options.secret === undefined ? {} : { secret: options.secret }),
      },
    })),
  };
  const path = join(home.dir, 'config.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

export const outputDir = (prepared: PreparedTarget) => join(prepared.dir, 'out');

export type { LogLine } from '../../scripts/testbed/cli-process.ts';

/** A running `kubeconfig-rotator sidecar` process, its output kept in a log file under `logDir`. */
export class SidecarProcess extends CliProcess {
  readonly logFile: string;

  constructor(
    configPath: string,
    options: {
      once?: boolean;
      env?: NodeJS.ProcessEnv;
      nodeOptions?: readonly string[];
      /** A compiled dist/cli.js instead of the sources. */
      entry?: string;
      logDir: string;
    },
  ) {
    const logFile = join(options.logDir, `${uniqueName('sidecar')}.log`);
    super(['sidecar', '--config', configPath, ...(options.once === true ? ['--once'] : [])], {
      logFile,
      label: 'sidecar',
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.nodeOptions === undefined ? {} : { nodeOptions: options.nodeOptions }),
      ...(options.entry === undefined ? {} : { entry: options.entry }),
    });
    this.logFile = logFile;
  }
}

export const rotated = (line: LogLine) => line.msg === 'certificate rotated';
export const tokenRotated = (line: LogLine) => line.msg === 'token rotated';

export type CsrDecision = 'approve' | 'deny' | 'ignore';

/**
 * Stands in for the approver: decides the CSRs of one target (by the sidecar's target label) with the admin
 * credential, as `decide` says. Records every CSR it saw.
 */
export class TestApprover {
  readonly seen = new Map<string, V1CertificateSigningRequest>();
  /** Lists of the target's CSRs done so far, successful or not. */
  passes = 0;
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
        const list = await this.#api.listCertificateSigningRequest({
          labelSelector: `kubeconfig-rotator.io/target=${this.#target}`,
        });
        for (const csr of list.items) {
          const name = csr.metadata?.name ?? '';
          this.seen.set(name, csr);
          if ((csr.status?.conditions ?? []).length > 0) continue;
          const decision = this.decide(csr);
          if (decision === 'ignore') continue;
          const type = decision === 'approve' ? 'Approved' : 'Denied';
          await this.#api.replaceCertificateSigningRequestApproval({
            name,
            body: {
              ...csr,
              status: {
                conditions: [
                  {
                    type,
                    status: 'True',
                    reason: `Test${type}`,
                    message: `${type.toLowerCase()} by the test approver`,
                  },
                ],
              },
            },
          });
        }
      } catch {
        // The target may be down on purpose; keep polling.
      }
      this.passes++;
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

/**
 * What every sidecar test file needs: a scratch directory, sidecars started in it, and at the end all of
 * them stopped and their logs checked for secrets (the keys and tokens the file collected in `secrets`, or
 * with `remember`). Other processes the file runs (an approver) are tracked with `track`: stopped at the end
 * too, before their logs are checked with the sidecars'. The end comes even when a test fails or times out,
 * so no process outlives its file.
 */
export function sidecarTestFile(prefix: string) {
  const scratch = scratchDir(prefix);
  const processes: SidecarProcess[] = [];
  const tracked: { readonly logFile: string; stop(): Promise<unknown> }[] = [];
  const secrets: string[] = [];
  after(async () => {
    await Promise.all([
      ...processes.map((sidecar) => sidecar.stop('SIGKILL')),
      ...tracked.map((other) => other.stop()),
    ]);
    assertNoSecretsInLogs(
      [...processes, ...tracked].map((one) => one.logFile),
      secrets,
    );
    scratch.dispose();
  });
  return {
    scratch,
    secrets,
    startSidecar: (
      configPath: string,
      options: { once?: boolean; env?: NodeJS.ProcessEnv; nodeOptions?: readonly string[] } = {},
    ): SidecarProcess => {
      const sidecar = new SidecarProcess(configPath, { ...options, logDir: scratch.path });
      processes.push(sidecar);
      return sidecar;
    },
    /** Another process whose log goes into the check (e.g. the approver's), stopped (SIGTERM) at the end first. */
    track: <Other extends { readonly logFile: string; stop(): Promise<unknown> }>(other: Other): Other => {
      tracked.push(other);
      return other;
    },
    /** A target's bootstrap token and, once one is published, its current key: never to be found in a log. */
    remember: (prepared: PreparedTarget): void => {
      secrets.push(prepared.bootstrap.token.secret);
      const key = join(outputDir(prepared), 'tls.key');
      if (existsSync(key)) secrets.push(readFileSync(key, 'utf8'));
    },
  };
}
