// `bootstrap --credential federated`: what a target needs to trust the source's ServiceAccount tokens. It
// reads the source's issuer, checks that anonymous readers (the target's apiserver) can fetch its discovery
// document and keys, prints the target's authenticator (a self-managed target's AuthenticationConfiguration
// entry, or EKS's identity-provider input) and, where it can, applies: that entry into a local
// AuthenticationConfiguration file, the mapped user's RBAC in the target, and the source's bootstrap Secret
// (the target's server and CA, no credential). Nothing is stored in the target for the source but RBAC.
import { request } from 'node:https';
import { WellKnownApi, type KubeConfig } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { readFileSync, writeFileSync } from 'node:fs';
import type { FederationSettings } from '../core/bootstrap/flags.ts';
import {
  BOOTSTRAP_SECRET_KEY,
  MANAGED_BY,
  SOURCE_LABEL,
  sourceSecretObjects,
  type KubeObject,
} from '../core/bootstrap/plan.ts';
import {
  authenticationConfigVersion,
  eksIdentityProviderConfig,
  federatedUser,
  jwtAuthenticator,
  withAuthenticator,
  type FederationInput,
} from '../core/bootstrap/federation.ts';
import { STRUCTURED_AUTHENTICATION, type KubeVersion } from '../core/kube-version.ts';
import { backoffDelay } from '../core/backoff.ts';
import { systemClock } from '../io/clock.ts';
import { describeError } from '../io/kube/errors.ts';
import { apply, BootstrapError, reachable, requireMinor } from './kube.ts';
import type { Clusters, TargetEndpoint } from './mode.ts';

// check/run.ts reads --service-account as bootstrap does.

export interface FederatedOptions extends FederationSettings {
  readonly secretName: string;
  readonly dryRun: boolean;
  readonly out: NodeJS.WritableStream;
  /**
   * Another use of the same trust (certificate targets' federated bootstrap, certificate-federated.ts): what the
   * target also needs for the mapped users, and what is printed last instead of the federated target's fields.
   */
  readonly trustFor?: {
    readonly targetObjects: (users: readonly string[]) => readonly KubeObject[];
    readonly report: (users: readonly string[]) => readonly string[];
  };
}

const DISCOVERY_BINDING = 'kubeconfig-rotator:anonymous-issuer-discovery';
const BINDING_PROPAGATION_MS = 10_000;
const BINDING_RECHECK_BACKOFF = { initialMs: 200, maxMs: 2_000 } as const;

export async function bootstrapFederated(
  options: FederatedOptions,
  clusters: Clusters,
  endpoint: TargetEndpoint & { readonly sourceCaPem: string | undefined },
): Promise<number> {
  const { target, source } = clusters;
  const write = (line: string) => options.out.write(`${line}\n`);
  const { input, targetVersion } = await readIssuer(options, clusters, endpoint.sourceCaPem);
  write(`source issuer ${input.issuerUrl}:`);
  await checkDiscovery(input.issuerUrl, input.caPem, options, source, write);

  const users = options.serviceAccounts.map((account) => federatedUser(input, account));
  if (options.targetType === 'eks') writeEksIdentityProvider(input, options, write);
  else writeJwtAuthenticator(input, options, targetVersion, write);
  write(`  the target sees ${users.join(', ')}`);

  const roleBindings = userRoleBindings(users, options);
  const bindings = [...roleBindings, ...(options.trustFor?.targetObjects(users) ?? [])];
  const sourceObjects = sourceSecretObjects({
    source: options.source,
    target: options.target,
    server: endpoint.server,
    caPem: endpoint.caPem,
    tlsServerName: endpoint.tlsServerName,
    sourceNamespace: options.namespace,
    secretName: options.secretName,
    // The pods bring their own source ServiceAccount token: the Secret holds no credential.
    token: undefined,
  });
  if (options.dryRun) {
    for (const object of bindings) write(`---\n${stringify(object).trimEnd()}`);
    for (const line of options.trustFor?.report(users) ?? []) write(line);
    return 0;
  }
  for (const object of bindings) await apply(target, object, 'target');
  for (const object of sourceObjects) await apply(source, object, 'source');
  if (roleBindings.length > 0) write(`  bound ${options.clusterRoles.join(', ')} to each of them`);
  write(
    `source: Secret ${options.namespace}/${options.secretName} (key ${BOOTSTRAP_SECRET_KEY}) holds the target's server and CA (no credential); mount it as the sidecar's bootstrapKubeconfig`,
  );
  for (const line of options.trustFor?.report(users) ?? [sidecarTargetFields(options, users)]) write(line);
  return 0;
}

/**
 * Both clusters answer (a self-managed target new enough for structured authentication), and the source's
 * issuer as the target is to trust it.
 */
async function readIssuer(
  options: FederatedOptions,
  { target, source }: Clusters,
  sourceCaPem: string | undefined,
): Promise<{ input: FederationInput; targetVersion: KubeVersion | undefined }> {
  await reachable(source, 'source');
  const targetVersion = await reachable(target, 'target');
  if (options.targetType === 'self-managed') requireMinor(targetVersion, STRUCTURED_AUTHENTICATION, 'target');
  const issuerUrl = await sourceIssuer(source);
  const sourceServer = source.getCurrentCluster()?.server ?? '';
  // A self-managed source's issuer is usually its apiserver: the target verifies it with the source's CA.
  const caPem = options.targetType === 'self-managed' && sameOrigin(issuerUrl, sourceServer) ? sourceCaPem : undefined;
  const input: FederationInput = {
    issuerUrl,
    caPem,
    audience: options.audience,
    userPrefix: options.userPrefix,
    accounts: options.serviceAccounts,
  };
  return { input, targetVersion };
}

/** EKS takes the issuer as an identity-provider config, one per ServiceAccount (each names its required sub). */
function writeEksIdentityProvider(input: FederationInput, options: FederatedOptions, write: (line: string) => void) {
  write('target (EKS): aws eks associate-identity-provider-config --cli-input-json with:');
  for (const account of options.serviceAccounts)
    write(
      JSON.stringify(
        eksIdentityProviderConfig({
          ...input,
          accounts: [account],
          clusterName: options.target,
          name: `kcr-${options.source}`.slice(0, 100),
        }),
        null,
        2,
      ),
    );
  write('  EKS fetches the issuer from the internet: it must be public, with a publicly trusted certificate.');
}

/** A self-managed target's jwt authenticator: written into --authentication-config (unless a dry run), else printed. */
function writeJwtAuthenticator(
  input: FederationInput,
  options: FederatedOptions,
  targetVersion: KubeVersion | undefined,
  write: (line: string) => void,
) {
  const authenticator = jwtAuthenticator(input);
  if (options.authenticationConfig !== undefined && !options.dryRun) {
    const existing = readExisting(options.authenticationConfig);
    const apiVersion = authenticationConfigVersion(targetVersion?.minor ?? Number.NaN);
    writeFileSync(options.authenticationConfig, stringify(withAuthenticator(existing, authenticator, apiVersion)));
    write(
      `target: wrote the authenticator for ${input.issuerUrl} into ${options.authenticationConfig} (kube-apiserver --authentication-config reloads it)`,
    );
  } else {
    write("target: add to the kube-apiserver's AuthenticationConfiguration (--authentication-config) under jwt:");
    write(stringify([authenticator]).trimEnd());
  }
}

/** One ClusterRoleBinding in the target per mapped user and --cluster-role. */
function userRoleBindings(users: readonly string[], options: FederatedOptions): KubeObject[] {
  return users.flatMap((user) =>
    options.clusterRoles.map((role) => ({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: {
        name: `kcr-federated:${options.source}:${role}:${user.slice(options.userPrefix.length)}`.slice(0, 253),
        labels: { ...MANAGED_BY, [SOURCE_LABEL]: options.source },
      },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    })),
  );
}

/** The fields of the sidecar's federated target, for the first ServiceAccount. */
function sidecarTargetFields(options: FederatedOptions, users: readonly string[]): string {
  const [first] = options.serviceAccounts;
  return `The sidecar's target: credential: federated, audiences: [${options.audience}]${first === undefined ? '' : `, serviceAccount: { namespace: ${first.namespace}, name: ${first.name} }, targetUser: ${users[0] ?? ''}`}.`;
}

async function sourceIssuer(source: KubeConfig): Promise<string> {
  try {
    // Typed as a string, handed back parsed: take either.
    const document: unknown = await source.makeApiClient(WellKnownApi).getServiceAccountIssuerOpenIDConfiguration();
    const parsed = (typeof document === 'string' ? JSON.parse(document) : document) as { issuer?: unknown };
    const issuer = parsed.issuer;
    if (typeof issuer !== 'string' || issuer === '') throw new Error('the discovery document names no issuer');
    return issuer;
  } catch (error) {
    throw new BootstrapError(
      `cannot read the source's ServiceAccount issuer (/.well-known/openid-configuration): ${describeError(error)}`,
      { cause: error },
    );
  }
}

const sameOrigin = (a: string, b: string) => {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
};

/** GET as an anonymous reader, as the target's apiserver will: the status code, or the network error. */
function anonymousGet(url: string, caPem: string | undefined): Promise<number | Error> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'GET', ...(caPem === undefined ? {} : { ca: caPem }), timeout: 10_000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 10 s')));
    req.on('error', resolve);
    req.end();
  });
}

/**
 * The documents read again after binding discovery to anonymous readers, until none is refused or about 10 s
 * have passed: the apiserver's authorizer sees a new binding only once its cache has it (usually within a second).
 */
async function readableOnceBound(documents: readonly string[], caPem: string | undefined): Promise<(number | Error)[]> {
  const deadline = systemClock.monotonic() + BINDING_PROPAGATION_MS;
  for (let attempt = 1; ; attempt++) {
    const results = await Promise.all(documents.map((url) => anonymousGet(url, caPem)));
    const refused = results.some((result) => result === 401 || result === 403);
    const delay = backoffDelay(attempt, BINDING_RECHECK_BACKOFF);
    if (!refused || systemClock.monotonic() + delay > deadline) return results;
    await systemClock.sleep(delay, new AbortController().signal);
  }
}

async function checkDiscovery(
  issuerUrl: string,
  caPem: string | undefined,
  options: FederatedOptions,
  source: KubeConfig,
  write: (line: string) => void,
): Promise<void> {
  const documents = [`${issuerUrl}/.well-known/openid-configuration`, `${issuerUrl}/openid/v1/jwks`];
  let results = await Promise.all(documents.map((url) => anonymousGet(url, caPem)));
  const refused = results.some((result) => result === 401 || result === 403);
  if (refused && options.allowAnonymousDiscovery && !options.dryRun) {
    await apply(
      source,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: DISCOVERY_BINDING, labels: { ...MANAGED_BY } },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'system:service-account-issuer-discovery',
        },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:unauthenticated' }],
      },
      'source',
    );
    write(
      `  bound system:service-account-issuer-discovery to system:unauthenticated (ClusterRoleBinding ${DISCOVERY_BINDING})`,
    );
    results = await readableOnceBound(documents, caPem);
  }
  documents.forEach((url, index) => {
    const result = results[index];
    if (result === 200) write(`  ${url}: readable anonymously`);
    else if (result instanceof Error)
      write(`  WARNING ${url}: not reachable from here (${result.message}); the target's apiserver must reach it`);
    else if (result === 401 || result === 403)
      write(
        `  WARNING ${url}: refused to anonymous readers (HTTP ${String(result)}): rerun with --allow-anonymous-discovery, or bind the ClusterRole system:service-account-issuer-discovery to the group system:unauthenticated in the source`,
      );
    else write(`  WARNING ${url}: HTTP ${String(result)}`);
  });
}

function readExisting(path: string): unknown {
  try {
    return parse(readFileSync(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BootstrapError(`--authentication-config ${path}: ${(error as Error).message}`, { cause: error });
  }
}
