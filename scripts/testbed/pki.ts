// Certificates for a local test cluster: a CA (trusted for client certificates and used by
// kube-controller-manager to sign CSRs), the apiserver's serving certificate and admin client certificates,
// valid for a year from `now`, and the service-account signing keys.
import { generateKeyPairSync } from 'node:crypto';
import * as issue from '../../src/core/pki/issue.ts';

export type { CertificateSpec as CertificateRequestSpec, PemPair } from '../../src/core/pki/issue.ts';

const year = (now: Date) => ({
  notBefore: new Date(now.getTime() - 60_000),
  notAfter: new Date(now.getTime() + 365 * 86_400_000),
});

export function createCertificateAuthority(commonName: string, now = new Date()): issue.PemPair {
  return issue.createCertificateAuthority(commonName, year(now));
}

export function issueCertificate(ca: issue.PemPair, spec: issue.CertificateSpec, now = new Date()): issue.PemPair {
  return issue.issueCertificate(ca, spec, year(now));
}

/** An RSA key pair for signing service-account tokens. */
export function createServiceAccountKeys(): { publicKey: string; privateKey: string } {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
