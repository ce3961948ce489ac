// `kubeconfig-rotator status PATH | --secret NAMESPACE/NAME`: what a published kubeconfig holds (identity,
// serial, expiry, time left, next rotation), read the way its consumer would read it.
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { rotationSchema } from '../core/config/sidecar.ts';
import { parseKubeconfig, type ParsedKubeconfig } from '../core/kubeconfig/parse.ts';
import type { PemSource } from '../core/kubeconfig/render.ts';
import { keyMatchesCertificate, readCertificate, type CertificateFacts } from '../core/pki/certificate.ts';
import { formatSubject } from '../core/pki/subject.ts';
import { jitterFromSerial, rotationDeadline } from '../core/rotation/schedule.ts';
import { describeError } from '../io/kube/errors.ts';
import { loadKubeConfig } from '../io/kube/load.ts';
import { ANNOTATIONS } from './sinks/secret.ts';

export interface StatusReport {
  readonly source: string;
  readonly server: string;
  readonly identity: string;
  readonly serial: string;
  readonly issuer: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly secondsLeft: number;
  /** From the Secret's annotation, or the default rule (70-90% of the lifetime, jitter from the serial). */
  readonly nextRotation: string;
  readonly nextRotationFrom: 'sidecar' | 'default rule';
  readonly keyMatches: boolean;
}

export class StatusError extends Error {}

// The sidecar's own defaults, so this estimate follows them when they change.
const DEFAULT_RULE = rotationSchema.parse({});

export function report(
  source: string,
  parsed: ParsedKubeconfig,
  certPem: string,
  keyPem: string | undefined,
  now: number,
  nextRotation?: string,
): StatusReport {
  let facts: CertificateFacts;
  try {
    facts = readCertificate(certPem);
  } catch (error) {
    throw new StatusError(`${source}: the client certificate cannot be read: ${describeError(error)}`, {
      cause: error,
    });
  }
  const deadline =
    nextRotation ??
    new Date(
      rotationDeadline(facts, { at: facts.notBefore, issued: true }, DEFAULT_RULE, jitterFromSerial(facts.serial)),
    ).toISOString();
  return {
    source,
    server: parsed.server,
    identity: formatSubject(facts.subject),
    serial: facts.serial,
    issuer: facts.x509.issuer.replaceAll('\n', ', '),
    notBefore: new Date(facts.notBefore).toISOString(),
    notAfter: new Date(facts.notAfter).toISOString(),
    secondsLeft: Math.floor((facts.notAfter - now) / 1000),
    nextRotation: deadline,
    nextRotationFrom: nextRotation === undefined ? 'default rule' : 'sidecar',
    keyMatches: keyPem !== undefined && keyMatchesCertificate(keyPem, facts),
  };
}

/** A published directory (its kubeconfig) or any kubeconfig file with a client certificate. */
export function statusOfPath(path: string, now: number): StatusReport {
  const file = statSync(path, { throwIfNoEntry: false })?.isDirectory() === true ? join(path, 'kubeconfig') : path;
  const read = (what: string, from: string) => {
    try {
      return readFileSync(from, 'utf8');
    } catch (error) {
      throw new StatusError(`${what} ${from} cannot be read: ${(error as Error).message}`, { cause: error });
    }
  };
  const parsed = parseOrFail(file, read('kubeconfig', file));
  const pem = (source: PemSource | undefined, what: string) => {
    if (source === undefined) throw new StatusError(`${file}: the kubeconfig has no ${what}`);
    return 'pem' in source
      ? source.pem
      : read(what, isAbsolute(source.file) ? source.file : join(dirname(file), source.file));
  };
  return report(
    file,
    parsed,
    pem(parsed.clientCertificate, 'client certificate'),
    pem(parsed.clientKey, 'client key'),
    now,
  );
}

export async function statusOfSecret(
  reference: string,
  kubeconfig: string | undefined,
  key: string,
  now: number,
): Promise<StatusReport> {
  const [namespace, name, ...rest] = reference.split('/');
  if (namespace === undefined || name === undefined || rest.length > 0 || namespace === '' || name === '') {
    throw new StatusError(`--secret must be NAMESPACE/NAME, got "${reference}"`);
  }
  const api = loadKubeConfig(kubeconfig).makeApiClient(CoreV1Api);
  let secret;
  try {
    secret = await api.readNamespacedSecret({ namespace, name });
  } catch (error) {
    throw new StatusError(`secret ${reference} cannot be read: ${describeError(error)}`, { cause: error });
  }
  const data = (field: string) => {
    const value = secret.data?.[field];
    return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
  };
  const config = data(key);
  if (config === undefined) throw new StatusError(`secret ${reference} has no key "${key}"`);
  const parsed = parseOrFail(`secret ${reference}`, config);
  const certPem =
    parsed.clientCertificate !== undefined && 'pem' in parsed.clientCertificate
      ? parsed.clientCertificate.pem
      : data('tls.crt');
  if (certPem === undefined) throw new StatusError(`secret ${reference} holds no client certificate`);
  const keyPem = parsed.clientKey !== undefined && 'pem' in parsed.clientKey ? parsed.clientKey.pem : data('tls.key');
  return report(
    `secret ${reference}`,
    parsed,
    certPem,
    keyPem,
    now,
    secret.metadata?.annotations?.[ANNOTATIONS.nextRotation],
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
    ['server', status.server],
    ['identity', status.identity],
    ['serial', status.serial],
    ['issuer', status.issuer],
    ['not before', status.notBefore],
    [
      'not after',
      `${status.notAfter} (${status.secondsLeft > 0 ? `${duration(status.secondsLeft)} left` : `EXPIRED ${duration(-status.secondsLeft)} ago`})`,
    ],
    [
      'next rotation',
      `${status.nextRotation} (${untilRotation >= 0 ? `in ${duration(untilRotation)}` : `due ${duration(-untilRotation)} ago`}; ${status.nextRotationFrom})`,
    ],
    ['key matches', status.keyMatches ? 'yes' : 'NO: the key does not belong to the certificate'],
  ];
  return rows.map(([label, value]) => `${`${label}:`.padEnd(15)}${value}\n`).join('');
}
