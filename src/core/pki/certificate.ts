// Facts about an issued client certificate, and the checks made before it is used: the key is ours, the
// subject is what we asked for, it may authenticate clients, it is within its validity window and
// (optionally) it was signed by the expected CA. All checks run and every failure is reported.
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { DEFAULT_REQUEST_LIMITS, parseName } from './csr-parse.ts';
import { children, DerError, readElement, TAG, expectTag } from './der.ts';
import { sameSubject, formatSubject, type Subject } from './subject.ts';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface CertificateFacts {
  readonly subject: Subject;
  /** Hex, upper case, as openssl prints it. */
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly publicKey: KeyObject;
  readonly extendedKeyUsages: readonly string[];
  readonly x509: X509Certificate;
}

export class CertificateError extends Error {}

/** The first certificate of a PEM bundle; throws CertificateError when it is not one. */
export function readCertificate(pem: string): CertificateFacts {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch (error) {
    throw new CertificateError(`not a PEM certificate: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return {
    subject: subjectOf(x509),
    serial: x509.serialNumber.toUpperCase(),
    notBefore: x509.validFromDate.getTime(),
    notAfter: x509.validToDate.getTime(),
    publicKey: x509.publicKey,
    extendedKeyUsages: extendedKeyUsagesOf(x509),
    x509,
  };
}

function extendedKeyUsagesOf(x509: X509Certificate): readonly string[] {
  // Undefined at run time when the certificate has no extendedKeyUsage extension, whatever the typings say.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  return x509.keyUsage ?? [];
}

/** CN and O read from the DER (not from a formatted string, which escapes and reorders). */
function subjectOf(x509: X509Certificate): Subject {
  try {
    const limits = DEFAULT_REQUEST_LIMITS;
    const [tbs] = children(expectTag(readElement(x509.raw), TAG.SEQUENCE, 'certificate'), 0, limits);
    const fields = children(expectTag(tbs, TAG.SEQUENCE, 'tbsCertificate'), 1, limits);
    // tbsCertificate: [0] version (optional), serial, signature, issuer, validity, subject, ...
    const subject = fields[fields[0]?.tag === 0xa0 ? 5 : 4];
    const name = parseName(expectTag(subject, TAG.SEQUENCE, 'subject'), 2, limits);
    return { commonName: name.commonNames.join(','), organizations: name.organizations };
  } catch (error) {
    if (error instanceof DerError)
      throw new CertificateError(`certificate subject cannot be read: ${error.message}`, { cause: error });
    throw error;
  }
}

export interface Expectations {
  readonly publicKey: KeyObject;
  readonly subject: Subject;
  /** Milliseconds since the epoch. */
  readonly now: number;
  /** When set, the certificate must be issued and signed by this CA. */
  readonly issuer?: X509Certificate;
}

/** Every way the certificate falls short of what we asked for; empty when it is fit to publish. */
export function certificateProblems(facts: CertificateFacts, expected: Expectations): string[] {
  const problems: string[] = [];
  if (!facts.publicKey.equals(expected.publicKey)) problems.push('public key is not the one we generated');
  if (!sameSubject(facts.subject, expected.subject)) {
    problems.push(`subject is "${formatSubject(facts.subject)}", expected "${formatSubject(expected.subject)}"`);
  }
  if (!facts.extendedKeyUsages.includes(CLIENT_AUTH)) problems.push('extended key usage lacks client auth');
  if (expected.now < facts.notBefore) problems.push(`not valid before ${new Date(facts.notBefore).toISOString()}`);
  if (expected.now >= facts.notAfter) problems.push(`expired at ${new Date(facts.notAfter).toISOString()}`);
  if (
    expected.issuer !== undefined &&
    !(facts.x509.checkIssued(expected.issuer) && facts.x509.verify(expected.issuer.publicKey))
  ) {
    problems.push(`not signed by the configured signer CA (${expected.issuer.subject.replaceAll('\n', ', ')})`);
  }
  return problems;
}

/** Whether a PEM private key is the one behind this certificate. */
export function keyMatchesCertificate(keyPem: string, facts: CertificateFacts): boolean {
  try {
    return createPublicKey(createPrivateKey(keyPem)).equals(facts.publicKey);
  } catch {
    return false;
  }
}
