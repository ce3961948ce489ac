// Obtaining a client certificate through the CertificateSigningRequest API: a key pair made here (or the
// pending one, after a restart), a CSR named after what it asks for, then list + watch of that one CSR until
// it is issued, denied, failed, deleted or left unanswered too long.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import type { V1CertificateSigningRequest } from '@kubernetes/client-node';
import { parseCertificationRequest } from '../core/pki/csr-parse.ts';
import { buildCertificationRequest } from '../core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair, type KeyAlgorithm, type KeyPair } from '../core/pki/keys.ts';
import { sameSubject, type Subject } from '../core/pki/subject.ts';
import { csrName } from '../core/rotation/csr-name.ts';
import type { Clock } from '../io/clock.ts';
import { cut, describeError, kubeStatus } from '../io/kube/errors.ts';
import { restListWatchSource, type KubeClient } from '../io/kube/rest.ts';
import { until } from '../io/kube/until.ts';
import type { Logger } from '../io/log.ts';
import { RotationError } from './errors.ts';
import { classify, type CredentialIssuer, type IssuedCredential } from './issuer.ts';
import type { PendingRequest, PendingStore } from './pending-store.ts';

export interface CertificateRequestSpec {
  readonly subject: Subject;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly signerName: string;
  readonly expirationSeconds: number;
  readonly approvalTimeoutMs: number;
}

/** A certificate from the CSR API, with the time its three steps took. */
export interface CsrIssuedCertificate extends IssuedCredential {
  readonly timings: { readonly keygen: number; readonly create: number; readonly wait: number };
}

export interface CsrIssuerOptions {
  readonly spec: CertificateRequestSpec;
  readonly pending: PendingStore;
  /** Wall time for the request's age; the wait for approval sleeps on it. */
  readonly clock: Clock;
  /** The wait's informer reports its failures here. */
  readonly logger: Logger;
  /** Labels the CSR carries, for operators and the approver's events. */
  readonly labels: Readonly<Record<string, string>>;
  /** Called after each step (traced in logs; the crash-consistency test kills at each). */
  readonly onStep?: (step: string) => void;
}

const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

export class CsrIssuer implements CredentialIssuer {
  readonly #options: CsrIssuerOptions;

  constructor(options: CsrIssuerOptions) {
    this.#options = options;
  }

  async hasPending(): Promise<boolean> {
    return (await this.#usablePending()) !== undefined;
  }

  async finish(): Promise<void> {
    await this.#options.pending.clear();
  }

  async obtain(client: KubeClient, signal: AbortSignal): Promise<CsrIssuedCertificate> {
    // Durations, on monotonic time.
    const started = this.#options.clock.monotonic();
    const pending = (await this.#usablePending()) ?? (await this.#newRequest());
    const keys = keyPairOf(pending);
    const keygenDone = this.#options.clock.monotonic();
    const uid = await this.#createOrAdopt(client, pending, keys);
    const created = this.#options.clock.monotonic();
    this.#options.onStep?.('csr-created');
    const certificate = await this.#waitForCertificate(client, pending, uid, signal);
    this.#options.onStep?.('certificate-issued');
    return {
      credential: { certPem: certificate, keyPem: pending.keyPem },
      request: pending.csrName,
      timings: {
        keygen: keygenDone - started,
        create: created - keygenDone,
        wait: this.#options.clock.monotonic() - created,
      },
    };
  }

  async #usablePending(): Promise<PendingRequest | undefined> {
    const pending = await this.#options.pending.load();
    const { spec } = this.#options;
    // A request for another identity or key type (the config changed) is abandoned.
    const matches =
      pending !== undefined &&
      sameSubject(pending.subject, spec.subject) &&
      pending.algorithm === spec.keyAlgorithm &&
      pending.signerName === spec.signerName &&
      pending.expirationSeconds === spec.expirationSeconds;
    return matches ? pending : undefined;
  }

  async #newRequest(): Promise<PendingRequest> {
    const { spec } = this.#options;
    const keys = generateKeyPair(spec.keyAlgorithm);
    const pending: PendingRequest = {
      keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      algorithm: spec.keyAlgorithm,
      subject: spec.subject,
      signerName: spec.signerName,
      expirationSeconds: spec.expirationSeconds,
      csrName: csrName({
        subjectPublicKeyInfo: keys.publicKey.export({ type: 'spki', format: 'der' }),
        subject: spec.subject,
        usages: clientUsagesFor(spec.keyAlgorithm),
        signerName: spec.signerName,
      }),
      createdAt: this.#options.clock.now(),
    };
    // Persisted before the CSR exists: a restart in between finds the key for the request it may have made.
    await this.#options.pending.save(pending);
    this.#options.onStep?.('pending-key-saved');
    return pending;
  }

  /** Creates the CSR, or adopts the existing one of that name if it carries our public key. Returns its uid. */
  async #createOrAdopt(client: KubeClient, pending: PendingRequest, keys: KeyPair): Promise<string> {
    const body: V1CertificateSigningRequest = {
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: { name: pending.csrName, labels: { ...this.#options.labels } },
      spec: {
        request: Buffer.from(buildCertificationRequest(pending.subject, keys)).toString('base64'),
        signerName: pending.signerName,
        usages: clientUsagesFor(pending.algorithm),
        expirationSeconds: pending.expirationSeconds,
      },
    };
    try {
      const created = await client.request<V1CertificateSigningRequest>('POST', CSR_PATH, { body });
      return created.metadata?.uid ?? '';
    } catch (error) {
      if (kubeStatus(error)?.reason !== 'AlreadyExists') throw classify(error, `creating CSR ${pending.csrName}`);
    }
    let existing: V1CertificateSigningRequest;
    try {
      existing = await client.request<V1CertificateSigningRequest>('GET', `${CSR_PATH}/${pending.csrName}`);
    } catch (error) {
      throw classify(error, `reading existing CSR ${pending.csrName}`);
    }
    const parsed = parseCertificationRequest(Buffer.from(existing.spec.request, 'base64'));
    const ours = keys.publicKey.export({ type: 'spki', format: 'der' });
    if (!parsed.ok || !Buffer.from(parsed.request.subjectPublicKeyInfo).equals(ours)) {
      throw new RotationError(
        'error',
        `CSR ${pending.csrName} already exists with another public key; it is not ours and will not be used`,
        {
          requestFinished: true,
        },
      );
    }
    return existing.metadata?.uid ?? '';
  }

  async #waitForCertificate(
    client: KubeClient,
    pending: PendingRequest,
    uid: string,
    shutdown: AbortSignal,
  ): Promise<string> {
    const name = pending.csrName;
    const { clock, logger } = this.#options;
    const { approvalTimeoutMs } = this.#options.spec;
    // Counted from the request's creation: a restart must not grant an adopted request a fresh timeout.
    const remainingMs = Math.max(0, pending.createdAt + approvalTimeoutMs - clock.now());
    const outOfTime = new AbortController();
    const finished = new AbortController();
    let lastError: unknown;
    let looked = false;
    let expired = false;
    const timedOut = () => {
      const detail = lastError === undefined ? '' : ` (last watch error: ${describeError(lastError)})`;
      return new RotationError(
        'timeout',
        `CSR ${name} was not decided within ${String(approvalTimeoutMs / 1000)} s${detail}`,
        { requestFinished: true },
      );
    };
    void clock.sleep(remainingMs, finished.signal).then(() => {
      if (finished.signal.aborted) return;
      expired = true;
      // Out of time before the first look (after a long restart): that look may still find it issued.
      if (looked) outOfTime.abort();
    });
    try {
      const outcome = await until<V1CertificateSigningRequest, CsrOutcome>(
        {
          source: restListWatchSource(client, CSR_PATH, { fieldSelector: `metadata.name=${name}` }),
          name,
          describe: `CSR ${name}`,
          logger,
          clock,
          onRestart: (_reason, error) => {
            if (error !== undefined) lastError = error;
            if (expired) outOfTime.abort();
          },
        },
        (csr) => {
          looked = true;
          return outcomeOf(csr, name, uid) ?? (expired ? { error: timedOut() } : undefined);
        },
        // A shutdown that came during the create has already aborted: the wait ends at once.
        AbortSignal.any([shutdown, outOfTime.signal]),
      );
      if (outcome === undefined) {
        throw shutdown.aborted
          ? new RotationError('error', `waiting for CSR ${name} was interrupted by shutdown`)
          : timedOut();
      }
      if ('error' in outcome) throw outcome.error;
      return outcome.certificate;
    } finally {
      finished.abort();
    }
  }
}

function keyPairOf(pending: PendingRequest): KeyPair {
  const privateKey = createPrivateKey(pending.keyPem);
  return { algorithm: pending.algorithm, privateKey, publicKey: createPublicKey(privateKey) };
}

type CsrOutcome = { readonly certificate: string } | { readonly error: Error };

/** Undefined while the CSR is still undecided. */
function outcomeOf(csr: V1CertificateSigningRequest | undefined, name: string, uid: string): CsrOutcome | undefined {
  if (csr === undefined)
    return {
      error: new RotationError('failed', `CSR ${name} was deleted before it was issued`, { requestFinished: true }),
    };
  if (uid !== '' && csr.metadata?.uid !== uid) {
    return {
      error: new RotationError('failed', `CSR ${name} was replaced by another object of the same name`, {
        requestFinished: true,
      }),
    };
  }
  const condition = (type: string) => csr.status?.conditions?.find((c) => c.type === type && c.status === 'True');
  // Whoever may update the CSR's status wrote these: cut before they reach an error, an event or a log.
  const why = (found: { reason?: string; message?: string }) =>
    `${cut(found.reason ?? 'no reason', 64)}${found.message ? `: ${cut(found.message)}` : ''}`;
  const denied = condition('Denied');
  if (denied !== undefined) {
    return {
      error: new RotationError('denied', `CSR ${name} was denied: ${why(denied)}`, { requestFinished: true }),
    };
  }
  const failed = condition('Failed');
  if (failed !== undefined) {
    return {
      error: new RotationError('failed', `CSR ${name} failed: ${why(failed)}`, { requestFinished: true }),
    };
  }
  const certificate = csr.status?.certificate;
  if (condition('Approved') !== undefined && certificate !== undefined && certificate !== '') {
    return { certificate: Buffer.from(certificate, 'base64').toString('utf8') };
  }
  return undefined;
}
