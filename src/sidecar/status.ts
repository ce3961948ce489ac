// `kubeconfig-rotator status PATH | --secret NAMESPACE/NAME`: what a published kubeconfig holds (identity,
// serial or token ID, expiry, time left, next rotation), read the way its consumer would read it (a Secret
// in whichever format its sink wrote: kubeconfig, Argo CD, Istio...). The token itself is never shown.
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { CoreV1Api, type V1Secret } from '@kubernetes/client-node';
import { rotationSchema } from '../core/config/rotation.ts';
import { parseKubeconfig, type ParsedKubeconfig } from '../core/kubeconfig/parse.ts';
import type { PemSource } from '../core/kubeconfig/render.ts';
import {
  isComplete,
  readCredential,
  type Credential,
  type CredentialFacts,
  type CredentialKind,
} from '../core/credential/credential.ts';
import { bootstrapRefusal } from '../core/check/refusal.ts';
import { readCertificate } from '../core/pki/certificate.ts';
import { jitterFromSerial, rotationDeadline } from '../core/rotation/schedule.ts';
import { describeError, isNotFound } from '../io/kube/errors.ts';
import { loadKubeConfig } from '../io/kube/load-kubeconfig.ts';
import { detectSecretFormat } from '../core/secret-format/detect.ts';
import { kubeconfigKey, readSecretCredential } from '../core/secret-format/formats.ts';
import { ANNOTATIONS } from './sinks/secret.ts';

export interface StatusReport {
  readonly source: string;
  readonly kind: CredentialKind;
  readonly server: string;
  readonly identity: string;
  /** The certificate's serial or the token's ID. */
  readonly serial: string;
  /** Certificates: the signer's subject. */
  readonly issuer?: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly secondsLeft: number;
  /** From the Secret's annotation, or the default rule (70-90% of the lifetime, jitter from the serial). */
  readonly nextRotation: string;
  readonly nextRotationFrom: 'sidecar' | 'default rule';
  /** Certificates: whether the key belongs to the certificate. */
  readonly keyMatches?: boolean;
  /** Expired: what to do when the sidecar cannot renew it by itself. */
  readonly fix?: string;
}

/** Whether the credential would work now: unexpired, and a certificate with its own key. */
export const usable = (status: StatusReport): boolean => status.secondsLeft > 0 && status.keyMatches !== false;

export class StatusError extends Error {}

/** Nothing published where status looked: the sidecar has never obtained a credential, or writes elsewhere. */
const NOTHING_PUBLISHED =
  "nothing is published there: the sidecar has not obtained a credential for this target yet (or publishes elsewhere); its pod's /readyz and Warning Events say why, and a BootstrapRefused or RebootstrapNeeded Event names the fix (docs/bootstrap.md)";

/** An expired credential: the sidecar renews one it can; past expiry it needs the bootstrap credential. */
function expiredFix(kind: CredentialKind): string {
  return `the sidecar did not renew it in time (target unreachable: it recovers by itself within 30 s of the target's return; or its bootstrap credential is refused too: a RebootstrapNeeded Event on its pod): ${bootstrapRefusal(kind, true).fix}`;
}

// The sidecar's own defaults, so this estimate follows them when they change.
const DEFAULT_RULE = rotationSchema.parse({});

export function report(
  source: string,
  parsed: Pick<ParsedKubeconfig, 'server'>,
  credential: Credential,
  now: number,
  nextRotation?: string,
): StatusReport {
  let facts: CredentialFacts;
  try {
    facts = readCredential(credential);
  } catch (error) {
    const what = 'token' in credential ? 'token' : 'client certificate';
    throw new StatusError(`${source}: the ${what} cannot be read: ${describeError(error)}`, { cause: error });
  }
  const deadline =
    nextRotation ??
    new Date(
      rotationDeadline(facts, { at: facts.notBefore, issued: true }, DEFAULT_RULE, jitterFromSerial(facts.serial)),
    ).toISOString();
  const secondsLeft = Math.floor((facts.notAfter - now) / 1000);
  const certificate =
    'certPem' in credential
      ? {
          issuer: readCertificate(credential.certPem).x509.issuer.replaceAll('\n', ', '),
          keyMatches: isComplete(credential),
        }
      : {};
  return {
    source,
    kind: facts.kind,
    server: parsed.server,
    identity: facts.identity,
    serial: facts.serial,
    ...certificate,
    notBefore: new Date(facts.notBefore).toISOString(),
    notAfter: new Date(facts.notAfter).toISOString(),
    secondsLeft,
    nextRotation: deadline,
    nextRotationFrom: nextRotation === undefined ? 'default rule' : 'sidecar',
    ...(secondsLeft > 0 ? {} : { fix: expiredFix(facts.kind) }),
  };
}

/** A published directory (its kubeconfig) or any kubeconfig file with a client certificate or a token. */
export function statusOfPath(path: string, now: number): StatusReport {
  const file = statSync(path, { throwIfNoEntry: false })?.isDirectory() === true ? join(path, 'kubeconfig') : path;
  const read = (what: string, from: string) => {
    try {
      return readFileSync(from, 'utf8');
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT' ? `: ${NOTHING_PUBLISHED}` : '';
      throw new StatusError(`${what} ${from} cannot be read: ${(error as Error).message}${missing}`, { cause: error });
    }
  };
  const parsed = parseOrFail(file, read('kubeconfig', file));
  // Relative paths are relative to the kubeconfig, as client-go resolves them.
  const fileNamed = (path: string, what: string) => read(what, isAbsolute(path) ? path : join(dirname(file), path));
  const pem = (source: PemSource | undefined, what: string) => {
    if (source === undefined) throw new StatusError(`${file}: the kubeconfig has no ${what}`);
    return 'pem' in source ? source.pem : fileNamed(source.file, what);
  };
  const { token } = parsed;
  const credential: Credential =
    token === undefined
      ? { certPem: pem(parsed.clientCertificate, 'client certificate'), keyPem: pem(parsed.clientKey, 'client key') }
      : { token: 'value' in token ? token.value : fileNamed(token.file, 'token file').trim() };
  return report(file, parsed, credential, now);
}

export interface SecretStatusOptions {
  /** The source cluster's kubeconfig; default: in-cluster, $KUBECONFIG, ~/.kube/config. */
  readonly kubeconfig?: string | undefined;
  /** A context of that kubeconfig other than its current one. */
  readonly context?: string | undefined;
  /** The kubeconfig's key, for formats that let it be chosen; default: the format's own. */
  readonly key?: string | undefined;
}

/** A Secret sink's Secret, read through the format it was written in (found from its type and labels). */
export async function statusOfSecret(
  reference: string,
  options: SecretStatusOptions,
  now: number,
): Promise<StatusReport> {
  const [namespace, name, ...rest] = reference.split('/');
  if (namespace === undefined || name === undefined || rest.length > 0 || namespace === '' || name === '') {
    throw new StatusError(`--secret must be NAMESPACE/NAME, got "${reference}"`);
  }
  let secret: V1Secret;
  try {
    const api = loadKubeConfig(options.kubeconfig, options.context).makeApiClient(CoreV1Api);
    secret = await api.readNamespacedSecret({ namespace, name });
  } catch (error) {
    const missing = isNotFound(error) ? `: ${NOTHING_PUBLISHED}` : '';
    throw new StatusError(`secret ${reference} cannot be read: ${describeError(error)}${missing}`, { cause: error });
  }
  return statusOfSecretObject(reference, secret, options.key, now);
}

/** What a Secret read by any client holds (`check --config` reads it with the sidecar's own client). */
export function statusOfSecretObject(
  reference: string,
  secret: Pick<V1Secret, 'type' | 'data'> & {
    readonly metadata?: Pick<NonNullable<V1Secret['metadata']>, 'labels' | 'annotations'>;
  },
  chosenKey: string | undefined,
  now: number,
): StatusReport {
  const name = reference.split('/')[1] ?? reference;
  const options = { key: chosenKey };
  const data = Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([field, value]) => [field, Buffer.from(value, 'base64').toString('utf8')]),
  );
  const annotations = secret.metadata?.annotations ?? {};
  const detected = detectSecretFormat(
    { type: secret.type, labels: secret.metadata?.labels, annotations },
    annotations[ANNOTATIONS.target] ?? name,
  );
  const settings = options.key === undefined ? detected : { ...detected, key: options.key };
  const key = kubeconfigKey(settings);
  const where = `secret ${reference} (format ${settings.format}${key === undefined ? '' : `, key "${key}"`})`;
  if (key !== undefined && data[key] === undefined)
    throw new StatusError(`${where} has no key "${key}"${options.key === undefined ? ' (choose one with --key)' : ''}`);
  if (key !== undefined) parseOrFail(where, data[key] ?? '');
  const found = readSecretCredential(data, settings);
  let credential: Credential;
  if (found.token !== undefined) credential = { token: found.token };
  else if (found.certPem !== undefined) credential = { certPem: found.certPem, keyPem: found.keyPem ?? '' };
  else
    throw new StatusError(
      `${where} holds no client certificate or token` +
        (key === undefined ? '' : ' (a reference-mode kubeconfig names them by path: run status on that directory)'),
    );
  return report(
    `secret ${reference}`,
    { server: found.server ?? '' },
    credential,
    now,
    annotations[ANNOTATIONS.nextRotation],
  );
}

function parseOrFail(source: string, text: string): ParsedKubeconfig {
  try {
    return parseKubeconfig(text);
  } catch (error) {
    throw new StatusError(`${source}: ${(error as Error).message}`, { cause: error });
  }
}

function duration(seconds: number): string {
  const sign = seconds < 0 ? '-' : '';
  let rest = Math.abs(seconds);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${String(Math.floor(rest / size))}${unit}`);
      rest %= size;
    }
  }
  return sign + parts.join(' ');
}

export function formatReport(status: StatusReport, now: number): string {
  const untilRotation = Math.floor((Date.parse(status.nextRotation) - now) / 1000);
  const rows: [string, string][] = [
    ['source', status.source],
    ['credential', status.kind],
    ['server', status.server],
    ['identity', status.identity],
    [status.kind === 'token' ? 'token ID' : 'serial', status.serial],
    ...(status.issuer === undefined ? [] : [['issuer', status.issuer] as [string, string]]),
    ['not before', status.notBefore],
    [
      'not after',
      `${status.notAfter} (${status.secondsLeft > 0 ? `${duration(status.secondsLeft)} left` : `EXPIRED ${duration(-status.secondsLeft)} ago`})`,
    ],
    [
      'next rotation',
      `${status.nextRotation} (${untilRotation >= 0 ? `in ${duration(untilRotation)}` : `due ${duration(-untilRotation)} ago`}; ${status.nextRotationFrom})`,
    ],
  ];
  if (status.keyMatches !== undefined)
    rows.push(['key matches', status.keyMatches ? 'yes' : 'NO: the key does not belong to the certificate']);
  if (status.fix !== undefined) rows.push(['fix', status.fix]);
  return rows.map(([label, value]) => `${`${label}:`.padEnd(15)}${value}\n`).join('');
}
