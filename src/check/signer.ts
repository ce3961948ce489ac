// Does the target sign kubernetes.io/kube-apiserver-client certificates? One CSR for a check identity (ECDSA
// P-256, the shortest lifetime the API takes), approved by the check itself so that no policy is involved,
// waited for within a bound, then deleted. Its key never leaves memory; no RBAC names the identity.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CertificatesV1Api, type KubeConfig, type V1CertificateSigningRequest } from '@kubernetes/client-node';
import { backoffDelay } from '../core/backoff.ts';
import { MANAGED_BY } from '../core/bootstrap/plan.ts';
import type { SignerTrial } from '../core/check/certificate.ts';
import { buildCertificationRequest } from '../core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair } from '../core/pki/keys.ts';
import { MIN_EXPIRATION_SECONDS } from '../core/policy/schema.ts';
import { describeError } from '../io/kube/errors.ts';
import { abortable } from './abortable.ts';
import { bounded } from './bounded.ts';

const SIGNER = 'kubernetes.io/kube-apiserver-client';
/** kube-controller-manager signs an approved CSR within a second or two; a minute would already be broken. */
export const SIGNING_BOUND_MS = 30_000;
const POLL = { initialMs: 200, maxMs: 2_000 };

function finished(csr: V1CertificateSigningRequest): { type: string; message: string } | undefined {
  const condition = csr.status?.conditions?.find(
    (entry) => (entry.type === 'Denied' || entry.type === 'Failed') && entry.status === 'True',
  );
  return condition === undefined
    ? undefined
    : { type: condition.type, message: `${condition.reason ?? ''} ${condition.message ?? ''}`.trim() };
}

export async function trySigner(
  target: KubeConfig,
  now: () => number,
  boundMs = SIGNING_BOUND_MS,
): Promise<SignerTrial> {
  const api = target.makeApiClient(CertificatesV1Api);
  const name = `kubeconfig-rotator-check-${randomBytes(4).toString('hex')}`;
  const keys = generateKeyPair('ecdsa-p256');
  const request = buildCertificationRequest({ commonName: name, organizations: [] }, keys);
  try {
    await bounded('creating the check CSR', (signal) =>
      api.createCertificateSigningRequest(
        {
          body: {
            metadata: { name, labels: { ...MANAGED_BY, 'kubeconfig-rotator.io/check': 'true' } },
            spec: {
              signerName: SIGNER,
              request: Buffer.from(request).toString('base64'),
              usages: clientUsagesFor('ecdsa-p256'),
              expirationSeconds: MIN_EXPIRATION_SECONDS,
            },
          },
        },
        abortable(signal),
      ),
    );
  } catch (error) {
    return { result: 'error', message: describeError(error) };
  }
  try {
    const created = await bounded('reading the check CSR', (signal) =>
      api.readCertificateSigningRequest({ name }, abortable(signal)),
    );
    await bounded('approving the check CSR', (signal) =>
      api.replaceCertificateSigningRequestApproval(
        {
          name,
          body: {
            ...created,
            status: {
              conditions: [
                {
                  type: 'Approved',
                  status: 'True',
                  reason: 'KubeconfigRotatorCheck',
                  message: 'approved by kubeconfig-rotator check to test the signer; deleted after',
                },
              ],
            },
          },
        },
        abortable(signal),
      ),
    );
    const started = now();
    for (let polls = 1; ; polls++) {
      const csr = await bounded('reading the check CSR', (signal) =>
        api.readCertificateSigningRequest({ name }, abortable(signal)),
      );
      const refused = finished(csr);
      if (refused !== undefined) return { result: 'refused', condition: refused.type, message: refused.message };
      if ((csr.status?.certificate ?? '') !== '') return { result: 'issued', ms: now() - started };
      if (now() - started >= boundMs) return { result: 'timeout', boundMs };
      await sleep(Math.min(backoffDelay(polls, POLL), Math.max(0, started + boundMs - now())));
    }
  } catch (error) {
    return { result: 'error', message: describeError(error) };
  } finally {
    // Best effort: csrcleaner removes it within the hour anyway.
    await bounded('deleting the check CSR', (signal) =>
      api.deleteCertificateSigningRequest({ name }, abortable(signal)),
    ).catch(() => undefined);
  }
}
