// Running the approver as users do: a spawned `kubeconfig-rotator approver` process, authenticated with a
// ServiceAccount token bound to exactly the RBAC of src/approver/rbac.ts (never the admin credential). Its
// JSON log lines are parsed as they come.
import { join } from 'node:path';
import { CertificatesV1Api, type KubeConfig, type V1CertificateSigningRequest } from '@kubernetes/client-node';
import { buildCertificationRequest } from '../../src/core/pki/csr.ts';
import { generateKeyPair } from '../../src/core/pki/keys.ts';
import { createApproverAccount, type ApproverAccount } from '../../scripts/testbed/approver-account.ts';
import { CliProcess } from '../../scripts/testbed/cli-process.ts';
import { writeKubeletMount } from '../../scripts/testbed/mount.ts';
import { parseLabels, parseMetrics, sampleValue } from '../../scripts/testbed/metrics.ts';
import type { TestCluster } from './clusters.ts';
import { eventually } from './eventually.ts';
import { uniqueName } from './kube.ts';

export type { ApproverAccount };

/** A namespace of its own, the ServiceAccount and the approver's RBAC for `signerName`, a 2-hour token. */
export async function approverAccount(target: TestCluster, signerName: string, dir: string): Promise<ApproverAccount> {
  const name = uniqueName('kcr-approver');
  return createApproverAccount(target.admin(), target.state, {
    namespace: name,
    name,
    signerName,
    tokenSeconds: 7200,
    kubeconfig: join(dir, `${name}.kubeconfig`),
  });
}

/** The approver's policy `text`, mounted in `dir` as the kubelet mounts a ConfigMap's key; its path. */
export function mountPolicy(dir: string, text: string): string {
  const path = writeKubeletMount(dir, { 'policy.yaml': text })['policy.yaml'];
  if (path === undefined) throw new Error(`no policy.yaml mounted in ${dir}`);
  return path;
}

/**
 * An approver for `signerName` as users run it: its account, its policy `text` mounted in DIR/policy, and the
 * process, once it leads.
 */
export async function startLeadingApprover(
  target: TestCluster,
  signerName: string,
  dir: string,
  text: string,
): Promise<{ readonly account: ApproverAccount; readonly policy: string; readonly approver: ApproverProcess }> {
  const account = await approverAccount(target, signerName, dir);
  const policy = mountPolicy(join(dir, 'policy'), text);
  const approver = new ApproverProcess({ account, policy, logDir: dir });
  await approver.waitForLog((line) => line.msg === 'started leading');
  return { account, policy, approver };
}

export interface ApproverProcessOptions {
  readonly account: ApproverAccount;
  readonly policy: string;
  readonly logDir: string;
  readonly identity?: string;
  readonly args?: readonly string[];
  /** The entry point to run: the TypeScript sources by default, or a compiled dist/cli.js. */
  readonly cli?: string;
  /** Options for node itself. */
  readonly nodeOptions?: readonly string[];
}

/** One `kubeconfig-rotator approver` process, its output kept in a log file under `logDir`. */
export class ApproverProcess extends CliProcess {
  readonly logFile: string;
  readonly identity: string;

  constructor(options: ApproverProcessOptions) {
    const identity = options.identity ?? uniqueName('approver');
    const logFile = join(options.logDir, `${identity}.log`);
    super(
      [
        'approver',
        '--policy',
        options.policy,
        '--kubeconfig',
        options.account.kubeconfig,
        '--lease-namespace',
        options.account.namespace,
        // The only Lease its account may hold.
        '--lease-name',
        options.account.leaseName,
        '--identity',
        identity,
        '--listen',
        '127.0.0.1:0',
        '--log-level',
        'debug',
        ...(options.args ?? []),
      ],
      {
        logFile,
        label: `approver ${identity}`,
        ...(options.cli === undefined ? {} : { entry: options.cli }),
        ...(options.nodeOptions === undefined ? {} : { nodeOptions: options.nodeOptions }),
      },
    );
    this.identity = identity;
    this.logFile = logFile;
  }

  decisionsWritten(csr: string): number {
    return this.lines.filter((line) => line.msg === 'decision written' && line.csr === csr).length;
  }

  /** GET on the probe server (/healthz, /readyz, /metrics). */
  async get(path: string): Promise<{ status: number; body: string }> {
    const started = await this.waitForLog((line) => line.msg === 'approver started');
    const response = await fetch(`http://${String(started.address)}${path}`);
    return { status: response.status, body: await response.text() };
  }

  /** The sample of a metric with exactly `labels` (as written between the braces), 0 when absent. */
  async metric(name: string, labels = ''): Promise<number> {
    const { body } = await this.get('/metrics');
    return sampleValue(parseMetrics(body), `kubeconfig_rotator_approver_${name}`, parseLabels(labels));
  }
}

/** The Approved or Denied condition of a CSR once it has one. */
export async function waitForDecision(
  admin: KubeConfig,
  name: string,
  timeoutMs = 30_000,
): Promise<{ type: string; reason: string; message: string }> {
  const api = admin.makeApiClient(CertificatesV1Api);
  return eventually(async () => decisionOf(await api.readCertificateSigningRequest({ name })) ?? false, {
    timeoutMs,
    description: `a decision on CSR ${name}`,
  });
}

export function decisionOf(
  csr: V1CertificateSigningRequest,
): { type: string; reason: string; message: string } | undefined {
  const found = csr.status?.conditions?.find((entry) => entry.type === 'Approved' || entry.type === 'Denied');
  return found === undefined
    ? undefined
    : { type: found.type, reason: found.reason ?? '', message: found.message ?? '' };
}

export interface CsrInput {
  readonly pem: string;
  readonly usages?: readonly string[];
  /** null: no expirationSeconds at all. */
  readonly expirationSeconds?: number | null;
  readonly signerName?: string;
}

export const RUN_LABEL = 'kubeconfig-rotator.test/run';

/** Creates a CSR named and labelled after the test run `run` (see deleteRunCsrs); returns its name. */
export async function createCsr(as: KubeConfig, run: string, input: CsrInput): Promise<string> {
  const name = uniqueName(run);
  await as.makeApiClient(CertificatesV1Api).createCertificateSigningRequest({
    body: {
      metadata: { name, labels: { [RUN_LABEL]: run } },
      spec: {
        request: Buffer.from(input.pem).toString('base64'),
        signerName: input.signerName ?? 'kubernetes.io/kube-apiserver-client',
        usages: [...(input.usages ?? ['digital signature', 'client auth'])],
        ...(input.expirationSeconds === null ? {} : { expirationSeconds: input.expirationSeconds ?? 3600 }),
      },
    },
  });
  return name;
}

/** A request for `commonName` with a fresh ECDSA P-256 key. */
export function agentRequest(commonName: string, organizations: readonly string[] = []): string {
  return buildCertificationRequest({ commonName, organizations }, generateKeyPair('ecdsa-p256'));
}

export async function deleteRunCsrs(admin: KubeConfig, run: string): Promise<void> {
  await admin
    .makeApiClient(CertificatesV1Api)
    .deleteCollectionCertificateSigningRequest({ labelSelector: `${RUN_LABEL}=${run}` });
}
