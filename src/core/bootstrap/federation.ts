// What a target needs to trust a source's ServiceAccount tokens (`bootstrap --credential federated`): for a
// self-managed target, a `jwt` authenticator of its AuthenticationConfiguration (structured authentication,
// beta 1.30, GA 1.34); for EKS, the input of `aws eks associate-identity-provider-config`. Either maps the
// token to a user with a per-source prefix and admits only the named ServiceAccounts of the source.
import { serviceAccountUser } from '../credential/token.ts';

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

export interface FederationInput {
  /** The source's ServiceAccount issuer (`iss` of its tokens). */
  readonly issuerUrl: string;
  /** Where the target fetches the discovery document, when not under the issuer URL. */
  readonly discoveryUrl?: string | undefined;
  /** The PEM CA the target verifies the source's discovery and JWKS endpoints with; unset: the system's. */
  readonly caPem?: string | undefined;
  /** The audience the sidecar's tokens name. */
  readonly audience: string;
  /** Prepended to the token's subject to make the target's user name, e.g. "source-west:". */
  readonly userPrefix: string;
  /** The only source ServiceAccounts the target accepts. */
  readonly accounts: readonly ServiceAccountRef[];
}

/** Parses NAMESPACE/NAME (a --service-account); undefined when malformed. */
export function parseServiceAccountRef(text: string): ServiceAccountRef | undefined {
  const [namespace, name, ...rest] = text.split('/');
  if (namespace === undefined || name === undefined || namespace === '' || name === '' || rest.length > 0)
    return undefined;
  return { namespace, name };
}

export const defaultAudience = (target: string): string => `kubeconfig-rotator:${target}`;
export const defaultUserPrefix = (source: string): string => `source-${source}:`;

// Kubernetes reserves system: names (system:masters, system:nodes...): a source must never be mapped into them.
const RESERVED = 'system:';

/** Why a user prefix is unsafe, or undefined: an empty one would map a source's tokens to the target's own names. */
export function userPrefixProblem(prefix: string): string | undefined {
  if (prefix === '') return "must not be empty: the source's users would take names of the target's own";
  if (prefix.startsWith(RESERVED)) return `must not start with ${RESERVED}: Kubernetes reserves those names`;
  return undefined;
}

/** The user the target sees for a source ServiceAccount's token. */
export const federatedUser = (input: Pick<FederationInput, 'userPrefix'>, account: ServiceAccountRef): string =>
  `${input.userPrefix}${serviceAccountUser(account)}`;

/** A CEL string literal: JSON's escapes are CEL's. */
const cel = (value: string): string => JSON.stringify(value);

/** The `jwt` entry for the target's AuthenticationConfiguration (apiserver.config.k8s.io/v1). */
export function jwtAuthenticator(input: FederationInput): Record<string, unknown> {
  const subjects = input.accounts.map((account) => cel(serviceAccountUser(account)));
  return {
    issuer: {
      url: input.issuerUrl,
      ...(input.discoveryUrl === undefined ? {} : { discoveryURL: input.discoveryUrl }),
      ...(input.caPem === undefined ? {} : { certificateAuthority: input.caPem }),
      audiences: [input.audience],
      audienceMatchPolicy: 'MatchAny',
    },
    claimValidationRules: [
      {
        expression: `claims.sub in [${subjects.join(', ')}]`,
        message: `only ${input.accounts.map((account) => serviceAccountUser(account)).join(', ')} of this source may authenticate`,
      },
    ],
    claimMappings: {
      username: { expression: `${cel(input.userPrefix)} + claims.sub` },
      groups: { expression: `[${cel(`${input.userPrefix}system:serviceaccounts`)}]` },
      uid: { expression: 'claims.jti' },
    },
    // Checked by the apiserver on the mapped user, whatever the prefix became (a hand-edited file included).
    userValidationRules: [
      {
        expression: `!user.username.startsWith(${cel(RESERVED)})`,
        message: `a source's user may not have a name Kubernetes reserves (${RESERVED})`,
      },
      {
        expression: `user.groups.all(group, !group.startsWith(${cel(RESERVED)}))`,
        message: `a source's user may not be in a group Kubernetes reserves (${RESERVED})`,
      },
    ],
  };
}

/** Structured authentication configuration: v1beta1 from Kubernetes 1.30, v1 from 1.34. */
export const authenticationConfigVersion = (minor: number): string =>
  `apiserver.config.k8s.io/${minor >= 34 || Number.isNaN(minor) ? 'v1' : 'v1beta1'}`;

export function authenticationConfiguration(
  authenticators: readonly Record<string, unknown>[],
  apiVersion = authenticationConfigVersion(Number.NaN),
) {
  return { apiVersion, kind: 'AuthenticationConfiguration', jwt: [...authenticators] };
}

/**
 * `aws eks associate-identity-provider-config --cli-input-json`: EKS needs a public issuer with a publicly
 * trusted certificate, takes one required value per claim (so one ServiceAccount per provider), and refuses
 * `system:` prefixes.
 */
export function eksIdentityProviderConfig(
  input: FederationInput & { readonly clusterName: string; readonly name: string },
) {
  const [account, ...more] = input.accounts;
  if (account === undefined || more.length > 0)
    throw new Error('an EKS identity provider admits one ServiceAccount (requiredClaims takes one sub)');
  return {
    clusterName: input.clusterName,
    oidc: {
      identityProviderConfigName: input.name,
      issuerUrl: input.issuerUrl,
      clientId: input.audience,
      usernameClaim: 'sub',
      usernamePrefix: input.userPrefix,
      requiredClaims: { sub: serviceAccountUser(account) },
    },
  };
}

/**
 * An AuthenticationConfiguration with `authenticator` in place of any entry for the same issuer URL (a
 * re-run converges), other sources' entries and fields kept. `existing` is the parsed file, or undefined.
 */
export function withAuthenticator(existing: unknown, authenticator: Record<string, unknown>, apiVersion?: string) {
  const config = (typeof existing === 'object' && existing !== null ? existing : {}) as Record<string, unknown>;
  const url = (authenticator.issuer as { url: string }).url;
  const others = (Array.isArray(config.jwt) ? (config.jwt as Record<string, unknown>[]) : []).filter(
    (entry) => (entry.issuer as { url?: unknown } | undefined)?.url !== url,
  );
  return { ...authenticationConfiguration([], apiVersion), ...config, jwt: [...others, authenticator] };
}

/** The Secret in the source holding the target's server and CA, without any credential. */
export function federatedBootstrapKubeconfig(input: {
  target: string;
  server: string;
  caPem: string;
  tlsServerName?: string | undefined;
}) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: input.target,
        cluster: {
          server: input.server,
          'certificate-authority-data': Buffer.from(input.caPem).toString('base64'),
          ...(input.tlsServerName === undefined ? {} : { 'tls-server-name': input.tlsServerName }),
        },
      },
    ],
    // Federated tokens come from the source: this kubeconfig carries no credential.
    users: [{ name: 'none', user: {} }],
    contexts: [{ name: input.target, context: { cluster: input.target, user: 'none' } }],
    'current-context': input.target,
  };
}
