// What a target requires of its credential, per kind: whether one found in a sink carries the configured
// identity (one that does not is replaced at once), and why one just obtained must not be published.
import { createPrivateKey, createPublicKey, type X509Certificate } from 'node:crypto';
import { certificateProblems, readCertificate } from '../pki/certificate.ts';
import { keyAlgorithmOf, type KeyAlgorithm } from '../pki/keys.ts';
import { sameSubject, type Subject } from '../pki/subject.ts';
import type { Credential } from './credential.ts';
import { readToken, serviceAccountUser } from './token.ts';

export interface CredentialRules {
  fits(credential: Credential): boolean;
  /** Every way a credential just obtained falls short; empty when it may be published. */
  problems(credential: Credential, now: number): string[];
}

const otherKind = (wanted: string) => [`is not a ${wanted}`];

export function certificateRules(expected: {
  readonly subject: Subject;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly signerCA?: X509Certificate | undefined;
}): CredentialRules {
  return {
    fits(credential) {
      if ('token' in credential) return false;
      const facts = readCertificate(credential.certPem);
      return sameSubject(facts.subject, expected.subject) && keyAlgorithmOf(facts.publicKey) === expected.keyAlgorithm;
    },
    problems(credential, now) {
      if ('token' in credential) return otherKind('certificate');
      return certificateProblems(readCertificate(credential.certPem), {
        publicKey: createPublicKey(createPrivateKey(credential.keyPem)),
        subject: expected.subject,
        now,
        ...(expected.signerCA === undefined ? {} : { issuer: expected.signerCA }),
      });
    },
  };
}

export function tokenRules(expected: {
  readonly serviceAccount: { readonly namespace: string; readonly name: string };
  /** The lease Secret every token must be bound to. */
  readonly leaseSecret: string;
}): CredentialRules {
  const user = serviceAccountUser(expected.serviceAccount);
  return {
    fits(credential) {
      return 'token' in credential && readToken(credential.token).subject === user;
    },
    problems(credential, now) {
      if (!('token' in credential)) return otherKind('token');
      const facts = readToken(credential.token);
      const problems: string[] = [];
      if (facts.subject !== user) problems.push(`is for "${facts.subject}", expected "${user}"`);
      if (facts.boundTo?.kind !== 'Secret' || facts.boundTo.name !== expected.leaseSecret)
        problems.push(`is not bound to the lease Secret ${expected.leaseSecret}`);
      if (now < facts.notBefore) problems.push(`not valid before ${new Date(facts.notBefore).toISOString()}`);
      if (now >= facts.notAfter) problems.push(`expired at ${new Date(facts.notAfter).toISOString()}`);
      return problems;
    },
  };
}
