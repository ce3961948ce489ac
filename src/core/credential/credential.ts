// The two kinds of credential a target can be served with, and what the rotation loop, the sinks and the
// reports need to know of either: a client certificate with its key (CSR API), or a ServiceAccount token
// (TokenRequest API).
import { keyMatchesCertificate, readCertificate } from '../pki/certificate.ts';
import { formatSubject } from '../pki/subject.ts';
import { readToken } from './token.ts';

export interface CertificateCredential {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface TokenCredential {
  readonly token: string;
}

export type Credential = CertificateCredential | TokenCredential;

/** What a credential is at run time (a federated target's credential is a token too). */
export type CredentialKind = 'certificate' | 'token';

export const kindOf = (credential: Credential): CredentialKind => ('token' in credential ? 'token' : 'certificate');

export interface CredentialFacts {
  readonly kind: CredentialKind;
  readonly notBefore: number;
  readonly notAfter: number;
  /** The certificate's serial or the token's ID: in logs and events, and the seed of the renewal's jitter. */
  readonly serial: string;
  /** The user name the target sees. */
  readonly user: string;
  /** For logs: "CN=agent, O=agents" or "system:serviceaccount:ns:name". */
  readonly identity: string;
}

/** Reads either kind; throws (CertificateError, TokenError) when it cannot be read. */
export function readCredential(credential: Credential): CredentialFacts {
  if ('token' in credential) {
    const facts = readToken(credential.token);
    const { notBefore, notAfter, id: serial, subject } = facts;
    return { kind: 'token', notBefore, notAfter, serial, user: subject, identity: subject };
  }
  const facts = readCertificate(credential.certPem);
  return {
    kind: 'certificate',
    notBefore: facts.notBefore,
    notAfter: facts.notAfter,
    serial: facts.serial,
    user: facts.subject.commonName,
    identity: formatSubject(facts.subject),
  };
}

/** Whether a credential read back from a sink is whole: a certificate with its own key, a readable token. */
export function isComplete(credential: Credential): boolean {
  try {
    if ('token' in credential) return readToken(credential.token).notAfter > 0;
    return keyMatchesCertificate(credential.keyPem, readCertificate(credential.certPem));
  } catch {
    return false;
  }
}
