// Unsigned JWTs shaped like the TokenRequest API's, for unit tests of what reads tokens (the real apiserver's
// tokens are used wherever a token meets a cluster).
export interface TokenClaims {
  readonly sub?: string;
  readonly iat?: number;
  readonly nbf?: number;
  readonly exp?: number;
  readonly jti?: string;
  readonly aud?: string | readonly string[];
  readonly 'kubernetes.io'?: Record<string, unknown>;
}

const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function fakeToken(claims: TokenClaims): string {
  return `${part({ alg: 'RS256', kid: 'test' })}.${part(claims)}.c2lnbmF0dXJl`;
}

/** A token for system:serviceaccount:kubeconfig-rotator:kcr-west, bound to its lease Secret. */
export function leaseToken(options: { issuedAt: number; lifetimeSeconds: number; jti?: string; sub?: string }): string {
  const iat = Math.floor(options.issuedAt / 1000);
  return fakeToken({
    sub: options.sub ?? 'system:serviceaccount:kubeconfig-rotator:kcr-west',
    iat,
    nbf: iat,
    exp: iat + options.lifetimeSeconds,
    jti: options.jti ?? 'b0e6c1a4-0000-4000-8000-000000000001',
    aud: ['https://kubernetes.default.svc'],
    'kubernetes.io': {
      namespace: 'kubeconfig-rotator',
      serviceaccount: { name: 'kcr-west', uid: 'u1' },
      secret: { name: 'kcr-west-lease', uid: 'u2' },
    },
  });
}
