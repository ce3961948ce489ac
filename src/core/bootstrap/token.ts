// Bootstrap tokens (https://kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens/): the short-lived
// credential a sidecar uses only to request its first certificate. Plain objects, no client: the I/O shell
// sends them.

/** `<id>.<secret>`; the id is public (it names the Secret), the secret is not. */
export interface BootstrapToken {
  readonly id: string;
  readonly secret: string;
}

export const BOOTSTRAP_GROUP_PREFIX = 'system:bootstrappers:';
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
// The largest multiple of the alphabet size below 256: bytes at or above it are drawn again (no modulo bias).
const UNBIASED_LIMIT = 256 - (256 % ALPHABET.length);

export function generateBootstrapToken(randomBytes: (count: number) => Uint8Array): BootstrapToken {
  const draw = (length: number) => {
    let out = '';
    while (out.length < length) {
      for (const byte of randomBytes(length)) {
        if (byte < UNBIASED_LIMIT && out.length < length) out += ALPHABET.charAt(byte % ALPHABET.length);
      }
    }
    return out;
  };
  return { id: draw(6), secret: draw(16) };
}

export function bootstrapTokenString(token: BootstrapToken): string {
  return `${token.id}.${token.secret}`;
}

export function bootstrapUser(token: Pick<BootstrapToken, 'id'>): string {
  return `system:bootstrap:${token.id}`;
}

/** RFC 3339 without fractional seconds, as kubeadm writes it. */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface BootstrapTokenSecretOptions {
  readonly expiration: Date;
  /** Each must start with system:bootstrappers: (the apiserver ignores the token otherwise). */
  readonly extraGroups: readonly string[];
  readonly description: string;
  readonly labels?: Readonly<Record<string, string>>;
}

export function bootstrapTokenSecret(token: BootstrapToken, options: BootstrapTokenSecretOptions) {
  const badGroup = options.extraGroups.find((group) => !group.startsWith(BOOTSTRAP_GROUP_PREFIX));
  if (badGroup !== undefined)
    throw new Error(`bootstrap token group "${badGroup}" must start with "${BOOTSTRAP_GROUP_PREFIX}"`);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `bootstrap-token-${token.id}`, namespace: 'kube-system', labels: { ...options.labels } },
    type: 'bootstrap.kubernetes.io/token',
    stringData: {
      description: options.description,
      'token-id': token.id,
      'token-secret': token.secret,
      expiration: rfc3339(options.expiration),
      'usage-bootstrap-authentication': 'true',
      'auth-extra-groups': options.extraGroups.join(','),
    },
  };
}

/** A ClusterRole allowing only what a sidecar needs to obtain a certificate, bound to one group. */
export function csrRequesterRbac(name: string, group: string, labels: Readonly<Record<string, string>> = {}) {
  const metadata = { name, labels: { ...labels } };
  return {
    clusterRole: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata,
      rules: [
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['certificatesigningrequests'],
          verbs: ['create', 'get', 'list', 'watch'],
        },
      ],
    },
    clusterRoleBinding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: group }],
    },
  };
}
