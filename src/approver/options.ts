// The approver's command-line options beyond --policy, with their defaults and every problem reported at once.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

export const APPROVER_OPTIONS = {
  policy: { type: 'string' },
  kubeconfig: { type: 'string' },
  'lease-namespace': { type: 'string' },
  'lease-name': { type: 'string' },
  identity: { type: 'string' },
  listen: { type: 'string' },
  workers: { type: 'string' },
  'kube-api-qps': { type: 'string' },
  'kube-api-burst': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

export const APPROVER_USAGE =
  'approver --policy FILE [--kubeconfig FILE] [--lease-namespace NS] [--lease-name NAME] [--identity ID] ' +
  '[--listen HOST:PORT] [--workers N] [--kube-api-qps N] [--kube-api-burst N] [--log-level LEVEL]';

export interface ApproverOptions {
  readonly policyPath: string;
  readonly kubeconfigPath?: string;
  readonly leaseNamespace: string;
  readonly leaseName: string;
  /** The Lease holder identity: unique per process. */
  readonly identity: string;
  readonly listen: { readonly host: string; readonly port: number };
  readonly workers: number;
  /** Client-side rate limit of API requests (kube-controller-manager's defaults: 20 and 30). */
  readonly qps: number;
  readonly burst: number;
  readonly logLevel: string;
}

const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Unique per process: the host (the pod name in a cluster) and a random suffix, as client-go's callers do. */
function defaultIdentity(): string {
  return `${hostname()}_${randomBytes(4).toString('hex')}`;
}

function inClusterNamespace(): string | undefined {
  try {
    return readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function parseApproverOptions(
  values: Readonly<Record<string, unknown>>,
  env: NodeJS.ProcessEnv,
): { ok: true; options: ApproverOptions } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const text = (name: keyof typeof APPROVER_OPTIONS): string | undefined => {
    const value = values[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const number = (
    name: keyof typeof APPROVER_OPTIONS,
    fallback: number,
    check: (value: number) => boolean,
    expected: string,
  ): number => {
    const value = text(name);
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || !check(parsed)) problems.push(`--${name}: "${value}" is not ${expected}`);
    return parsed;
  };
  const policyPath = text('policy');
  if (policyPath === undefined) problems.push('--policy is required');
  const listenText = text('listen') ?? '0.0.0.0:8080';
  const listen = /^(?<host>.*):(?<port>\d{1,5})$/.exec(listenText)?.groups;
  const port = Number(listen?.port);
  if (listen === undefined || port > 65_535) problems.push(`--listen: "${listenText}" is not HOST:PORT`);
  const logLevel = text('log-level') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`--log-level: "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  const kubeconfigPath = text('kubeconfig');
  const options = {
    policyPath: policyPath ?? '',
    ...(kubeconfigPath === undefined ? {} : { kubeconfigPath }),
    leaseNamespace: text('lease-namespace') ?? env.POD_NAMESPACE ?? inClusterNamespace() ?? 'default',
    leaseName: text('lease-name') ?? 'kubeconfig-rotator-approver',
    identity: text('identity') ?? defaultIdentity(),
    listen: { host: listen?.host ?? '', port },
    workers: number(
      'workers',
      5,
      (value) => Number.isInteger(value) && value >= 1 && value <= 100,
      'a whole number from 1 to 100',
    ),
    qps: number('kube-api-qps', 20, (value) => value >= 0, 'a number >= 0 (0: no limit)'),
    burst: number('kube-api-burst', 30, (value) => Number.isInteger(value) && value >= 1, 'a whole number >= 1'),
    logLevel,
  };
  return problems.length === 0 ? { ok: true, options } : { ok: false, problems };
}
