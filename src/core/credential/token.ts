// Facts about a ServiceAccount token from the TokenRequest API, read from its JWT claims without verifying
// the signature: the target's apiserver is the one that verifies it, and a token it rejects is caught by the
// check the issuer makes before publishing. The token itself never leaves this module in an error message.
import { createHash } from 'node:crypto';

export interface TokenFacts {
  /** Milliseconds since the epoch (nbf, else iat). */
  readonly notBefore: number;
  /** Milliseconds since the epoch (exp). */
  readonly notAfter: number;
  /** Milliseconds since the epoch (iat), when the token says. */
  readonly issuedAt?: number;
  /** The token's ID (jti), or a digest of the token when it has none. */
  readonly id: string;
  /** The user the apiserver sees: system:serviceaccount:<namespace>:<name>. */
  readonly subject: string;
  /** The audiences the token is for (aud). */
  readonly audiences: readonly string[];
  /** The object the token is bound to (kubernetes.io.secret, .pod or .node), when bound. */
  readonly boundTo?: { readonly kind: 'Secret' | 'Pod' | 'Node'; readonly name: string };
}

export class TokenError extends Error {}

const claimsOf = (token: string): Record<string, unknown> => {
  const parts = token.split('.');
  const payload = parts[1];
  if (parts.length !== 3 || payload === undefined || payload === '')
    throw new TokenError('not a JWT (three base64url parts)');
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch (error) {
    throw new TokenError('the JWT payload is not JSON', { cause: error });
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims))
    throw new TokenError('the JWT payload is not an object');
  return claims as Record<string, unknown>;
};

const seconds = (claims: Record<string, unknown>, name: string): number | undefined => {
  const value = claims[name];
  return typeof value === 'number' && Number.isFinite(value) ? value * 1000 : undefined;
};

/** Reads a token's claims; throws TokenError (never quoting the token) when it is not a usable JWT. */
export function readToken(token: string): TokenFacts {
  const claims = claimsOf(token.trim());
  const notAfter = seconds(claims, 'exp');
  const notBefore = seconds(claims, 'nbf') ?? seconds(claims, 'iat');
  if (notAfter === undefined) throw new TokenError('the token has no expiry (exp): not a TokenRequest token');
  if (notBefore === undefined) throw new TokenError('the token has no issue time (iat or nbf)');
  const subject = claims.sub;
  if (typeof subject !== 'string' || subject === '') throw new TokenError('the token has no subject (sub)');
  const jti = claims.jti;
  const id =
    typeof jti === 'string' && jti !== '' ? jti : createHash('sha256').update(token).digest('hex').slice(0, 32);
  const boundTo = boundObject(claims['kubernetes.io']);
  const audiences = audiencesOf(claims.aud);
  const issuedAt = seconds(claims, 'iat');
  return {
    notBefore,
    notAfter,
    ...(issuedAt === undefined ? {} : { issuedAt }),
    id,
    subject,
    audiences,
    ...(boundTo === undefined ? {} : { boundTo }),
  };
}

// RFC 7519: one string or an array of them.
function audiencesOf(claim: unknown): string[] {
  if (typeof claim === 'string') return [claim];
  return Array.isArray(claim) ? claim.filter((entry): entry is string => typeof entry === 'string') : [];
}

function boundObject(claim: unknown): TokenFacts['boundTo'] {
  if (typeof claim !== 'object' || claim === null) return undefined;
  const kubernetes = claim as Record<string, unknown>;
  for (const [field, kind] of [
    ['secret', 'Secret'],
    ['pod', 'Pod'],
    ['node', 'Node'],
  ] as const) {
    const name = (kubernetes[field] as { name?: unknown } | undefined)?.name;
    if (typeof name === 'string') return { kind, name };
  }
  return undefined;
}

/** The user name Kubernetes gives a ServiceAccount. */
export const serviceAccountUser = (account: { readonly namespace: string; readonly name: string }): string =>
  `system:serviceaccount:${account.namespace}:${account.name}`;
