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
  /** What every new token must be bound to: the lease Secret (token targets), the sidecar's Pod (federated). */
  readonly boundTo?: { readonly kind: 'Secret' | 'Pod'; readonly name: string } | undefined;
  /** Audiences every token must name (federated: the one the target expects). */
  readonly audiences?: readonly string[];
  /** What every request asks for: a token living longer (exp - iat) was extended by the apiserver. */
  readonly expirationSeconds?: number;
}): CredentialRules {
  const user = serviceAccountUser(expected.serviceAccount);
  const audiences = expected.audiences ?? [];
  return {
    fits(credential) {
      if (!('token' in credential)) return false;
      const facts = readToken(credential.token);
      return facts.subject === user && audiences.every((audience) => facts.audiences.includes(audience));
    },
    problems(credential, now) {
      if (!('token' in credential)) return otherKind('token');
      const facts = readToken(credential.token);
      const problems: string[] = [];
      if (facts.subject !== user) problems.push(`is for "${facts.subject}", expected "${user}"`);
      const { boundTo } = expected;
      if (boundTo !== undefined && (facts.boundTo?.kind !== boundTo.kind || facts.boundTo.name !== boundTo.name))
        problems.push(`is not bound to the ${boundTo.kind} ${boundTo.name}`);
      for (const audience of audiences)
        if (!facts.audiences.includes(audience)) problems.push(`does not name the audience ${audience}`);
      const lifetimeSeconds = (facts.notAfter - (facts.issuedAt ?? facts.notBefore)) / 1000;
      // kube-apiserver extends some tokens to a year (--service-account-extend-token-expiration); a shorter one
      // (--service-account-max-token-expiration) is only renewed sooner.
      if (expected.expirationSeconds !== undefined && lifetimeSeconds > expected.expirationSeconds)
        problems.push(
          `lives ${String(lifetimeSeconds)} s (exp - iat), longer than the ${String(expected.expirationSeconds)} s requested: the apiserver extended it`,
        );
      if (now < facts.notBefore) problems.push(`not valid before ${new Date(facts.notBefore).toISOString()}`);
      if (now >= facts.notAfter) problems.push(`expired at ${new Date(facts.notAfter).toISOString()}`);
      return problems;
    },
  };
}
