// `kubeconfig-rotator bootstrap`'s flags, checked before any cluster is contacted: every problem at once
// (the command exits 2 listing them), or the mode to run with its settings resolved (defaults filled in,
// durations parsed). What reading the kubeconfigs finds wrong is added after these by the command.
import { dnsLabel } from '../config/fields.ts';
import { parseDuration } from './duration.ts';
import {
  defaultAudience,
  defaultUserPrefix,
  parseServiceAccountRef,
  userPrefixProblem,
  type ServiceAccountRef,
} from './federation.ts';
import type { GuardrailSettings } from './token-guardrail.ts';
import { DEFAULT_TOKEN_NAMESPACE } from './token-plan.ts';

export interface BootstrapFlags {
  readonly source: string;
  readonly target: string;
  readonly namespace: string;
  readonly ttl: string;
  /** certificate (default): a bootstrap token for the CSR API; token: a ServiceAccount and its first token. */
  readonly credential?: string | undefined;
  /** Token mode: the target namespace of the ServiceAccount and its lease Secret (default kubeconfig-rotator). */
  readonly targetNamespace?: string | undefined;
  /** Token mode: the longest token the guardrail lets anyone request for the ServiceAccount (default 24h). */
  readonly maxTokenTtl?: string | undefined;
  /** Token mode: the audiences tokens may name (default: the target apiserver's own). Federated: the one. */
  readonly audiences?: readonly string[] | undefined;
  /**
   * Certificate mode: what authenticates a sidecar's first CSR: token (default: a bootstrap token) or federated
   * (the pod's own source ServiceAccount token, trusted by the target like --credential federated).
   */
  readonly bootstrapWith?: string | undefined;
  /** Federated mode's (and federated bootstrap's) own options (docs/federation.md). */
  readonly federated?:
    | {
        readonly serviceAccounts: readonly string[];
        readonly userPrefix?: string | undefined;
        readonly targetType?: string | undefined;
        readonly authenticationConfig?: string | undefined;
        readonly allowAnonymousDiscovery?: boolean;
        readonly clusterRoles?: readonly string[];
      }
    | undefined;
}

/** A target trusting the source's ServiceAccount tokens (--credential federated, --bootstrap-with federated). */
export interface FederationSettings {
  readonly source: string;
  readonly target: string;
  readonly namespace: string;
  readonly serviceAccounts: readonly ServiceAccountRef[];
  readonly audience: string;
  readonly userPrefix: string;
  readonly targetType: 'self-managed' | 'eks';
  /** Self-managed: merge the authenticator into this AuthenticationConfiguration file. */
  readonly authenticationConfig: string | undefined;
  /** Bind system:service-account-issuer-discovery to system:unauthenticated in the source when needed. */
  readonly allowAnonymousDiscovery: boolean;
  /** ClusterRoles bound to each mapped user in the target. */
  readonly clusterRoles: readonly string[];
}

/** What `bootstrap` does, one mode per credential kind and, for certificates, per way of bootstrapping. */
export type BootstrapMode =
  | { readonly kind: 'certificate'; readonly ttlMs: number }
  | { readonly kind: 'certificate-federated'; readonly federation: FederationSettings }
  | {
      readonly kind: 'token';
      readonly ttlMs: number;
      readonly targetNamespace: string;
      readonly guardrail: GuardrailSettings;
    }
  | { readonly kind: 'federated'; readonly federation: FederationSettings };

export type FlagsCheck =
  { readonly ok: true; readonly mode: BootstrapMode } | { readonly ok: false; readonly problems: readonly string[] };

// Long enough to bootstrap; short enough that a leaked token soon stops mattering.
const MAX_TTL_MS = 7 * 86_400_000;
// The TokenRequest API issues nothing shorter than 10 minutes.
const MIN_TOKEN_TTL_MS = 600_000;

/** The flags' problems in the order they are listed, or the mode they ask for. */
export function checkBootstrapFlags(flags: BootstrapFlags): FlagsCheck {
  const credential = flags.credential ?? 'certificate';
  const bootstrapWith = flags.bootstrapWith ?? 'token';
  const audiences = flags.audiences ?? [];
  const targetNamespace = flags.targetNamespace ?? DEFAULT_TOKEN_NAMESPACE;
  const problems = [...nameProblems(flags, targetNamespace), ...kindProblems(flags, credential, bootstrapWith)];
  const tokenMode = credential === 'token';
  // A certificate target's federated bootstrap needs the same trust as a federated target.
  const federatedBootstrap = credential === 'certificate' && bootstrapWith === 'federated';
  if (federatedBootstrap && (flags.federated?.clusterRoles?.length ?? 0) > 0)
    problems.push(
      "--cluster-role is for --credential federated: with --bootstrap-with federated the certificate's identity is what is granted, not the bootstrap user",
    );
  const federation =
    credential === 'federated' || federatedBootstrap ? federationSettings(flags, audiences, problems) : undefined;
  const ttlMs = checkedTtl(flags.ttl, tokenMode, problems);
  problems.push(...misplacedFlagProblems(flags, credential, federatedBootstrap, federation !== undefined));
  const maxTokenTtlMs = tokenMode ? checkedMaxTokenTtl(flags, ttlMs, problems) : 0;
  if (tokenMode) problems.push(...audienceProblems(audiences));
  if (problems.length > 0) return { ok: false, problems };
  if (federation !== undefined)
    return { ok: true, mode: { kind: federatedBootstrap ? 'certificate-federated' : 'federated', federation } };
  if (tokenMode)
    return {
      ok: true,
      mode: {
        kind: 'token',
        ttlMs,
        targetNamespace,
        guardrail: { maxExpirationSeconds: maxTokenTtlMs / 1000, audiences },
      },
    };
  return { ok: true, mode: { kind: 'certificate', ttlMs } };
}

/** Each names objects and is a label value: at most 63 characters. */
function nameProblems(flags: BootstrapFlags, targetNamespace: string): string[] {
  const names = [
    ['--source-name', flags.source],
    ['--target-name', flags.target],
    ['--namespace', flags.namespace],
    ['--target-namespace', targetNamespace],
  ] as const;
  return names
    .filter(([, value]) => !dnsLabel.safeParse(value).success)
    .map(([flag, value]) => `${flag} "${value}" must be a DNS label (a-z, 0-9, -; at most 63 characters)`);
}

function kindProblems(flags: BootstrapFlags, credential: string, bootstrapWith: string): string[] {
  const problems: string[] = [];
  if (!['certificate', 'token', 'federated'].includes(credential))
    problems.push(`--credential ${credential} must be certificate, token or federated`);
  if (!['token', 'federated'].includes(bootstrapWith))
    problems.push(`--bootstrap-with ${bootstrapWith} must be token or federated`);
  else if (flags.bootstrapWith !== undefined && credential !== 'certificate')
    problems.push('--bootstrap-with is for --credential certificate only');
  return problems;
}

/** The --ttl in milliseconds (0 when unreadable); a token's is at least 10 minutes, any other's 10 seconds. */
function checkedTtl(ttl: string, tokenMode: boolean, problems: string[]): number {
  try {
    const ttlMs = parseDuration(ttl);
    if (ttlMs < (tokenMode ? MIN_TOKEN_TTL_MS : 10_000) || ttlMs > MAX_TTL_MS)
      problems.push(`--ttl ${ttl} must be between ${tokenMode ? '10m' : '10s'} and 7d`);
    return ttlMs;
  } catch (error) {
    problems.push(`--ttl: ${(error as Error).message}`);
    return 0;
  }
}

/** Flags given to a mode that has no use for them. */
function misplacedFlagProblems(
  flags: BootstrapFlags,
  credential: string,
  federatedBootstrap: boolean,
  federated: boolean,
): string[] {
  const problems: string[] = [];
  if (credential !== 'token' && flags.maxTokenTtl !== undefined)
    problems.push('--max-token-ttl is for --credential token only');
  if (credential === 'certificate' && !federatedBootstrap && flags.audiences?.[0] !== undefined)
    problems.push('--audience is for --credential token or federated, or --bootstrap-with federated, only');
  if (!federated && (flags.federated?.serviceAccounts.length ?? 0) > 0)
    problems.push('--service-account is for --credential federated only');
  return problems;
}

/** The --max-token-ttl in milliseconds (default 24h; 0 when unreadable), whole seconds, not below the --ttl. */
function checkedMaxTokenTtl(flags: BootstrapFlags, ttlMs: number, problems: string[]): number {
  const maxTokenTtl = flags.maxTokenTtl ?? '24h';
  try {
    const maxTokenTtlMs = parseDuration(maxTokenTtl);
    if (maxTokenTtlMs < MIN_TOKEN_TTL_MS || maxTokenTtlMs % 1000 !== 0)
      problems.push(`--max-token-ttl ${maxTokenTtl} must be whole seconds, at least 10m`);
    else if (ttlMs > maxTokenTtlMs) problems.push(`--ttl ${flags.ttl} is longer than --max-token-ttl ${maxTokenTtl}`);
    return maxTokenTtlMs;
  } catch (error) {
    problems.push(`--max-token-ttl: ${(error as Error).message}`);
    return 0;
  }
}

const audienceProblems = (audiences: readonly string[]): string[] =>
  audiences
    .filter((audience) => audience === '' || /\p{Cc}/u.test(audience))
    .map((audience) => `--audience ${JSON.stringify(audience)} must be non-empty, without control characters`);

/** Federated mode's settings, checked; each problem is added to `problems`. */
function federationSettings(
  flags: BootstrapFlags,
  audiences: readonly string[],
  problems: string[],
): FederationSettings {
  const given = flags.federated ?? { serviceAccounts: [] };
  const serviceAccounts = given.serviceAccounts.flatMap((text) => {
    const ref = parseServiceAccountRef(text);
    if (ref === undefined) problems.push(`--service-account ${text} must be NAMESPACE/NAME`);
    return ref === undefined ? [] : [ref];
  });
  if (given.serviceAccounts.length === 0)
    problems.push('--service-account NAMESPACE/NAME (the source ServiceAccount the target admits) is required');
  const targetType = given.targetType ?? 'self-managed';
  if (targetType !== 'self-managed' && targetType !== 'eks')
    problems.push(`--target-type ${targetType} must be self-managed or eks`);
  if (audiences.length > 1) problems.push('--audience: a federated target takes one audience');
  if (targetType === 'eks' && given.authenticationConfig !== undefined)
    problems.push('--authentication-config is for self-managed targets (EKS takes an identity provider)');
  const userPrefix = given.userPrefix ?? defaultUserPrefix(flags.source);
  const prefixProblem = userPrefixProblem(userPrefix);
  if (prefixProblem !== undefined) problems.push(`--user-prefix ${JSON.stringify(userPrefix)} ${prefixProblem}`);
  return {
    source: flags.source,
    target: flags.target,
    namespace: flags.namespace,
    serviceAccounts,
    audience: audiences[0] ?? defaultAudience(flags.target),
    userPrefix,
    targetType: targetType === 'eks' ? 'eks' : 'self-managed',
    authenticationConfig: given.authenticationConfig,
    allowAnonymousDiscovery: given.allowAnonymousDiscovery === true,
    clusterRoles: given.clusterRoles ?? [],
  };
}
