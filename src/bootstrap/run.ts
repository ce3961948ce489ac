// `kubeconfig-rotator bootstrap`: with admin access to a target and a source cluster for that moment, make
// the short-lived bootstrap credential a source's sidecar needs for its first certificate. Applies the plan
// with server-side apply (a re-run converges), then removes this source's older tokens. Prints no secret.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { parseDuration } from '../core/bootstrap/duration.ts';
import {
  BOOTSTRAP_SECRET_KEY,
  bootstrapGroup,
  CSR_REQUESTER_ROLE,
  type KubeObject,
  bootstrapPlan,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  redactPlan,
  SOURCE_LABEL,
  type BootstrapPlan,
} from '../core/bootstrap/plan.ts';
import {
  DEFAULT_TOKEN_NAMESPACE,
  tokenIdentity,
  tokenRequestBody,
  tokenSourceObjects,
  tokenTargetObjects,
  type TokenIdentity,
} from '../core/bootstrap/token-plan.ts';
import { guardrailName, tokenGuardrailObjects, type GuardrailSettings } from '../core/bootstrap/token-guardrail.ts';
import { readToken, serviceAccountUser } from '../core/credential/token.ts';
import { bootstrapTokenString, bootstrapUser, generateBootstrapToken } from '../core/bootstrap/token.ts';
import { bootstrapTokenCheck } from '../core/check/checks.ts';
import { docsSection } from '../core/check/model.ts';
import { reviewToken } from '../check/bootstrap-token.ts';
import { dnsLabel } from '../core/config/fields.ts';
import { describeError } from '../io/kube/errors.ts';
import { VALIDATING_ADMISSION_POLICY } from '../core/kube-version.ts';
import {
  apply,
  BootstrapError,
  clusterCa,
  loadContext,
  reachable,
  requireMinor,
  writeProblems,
  type ClusterPair,
} from './kube.ts';
import { bootstrapFederated, parseServiceAccountRef, type FederatedOptions } from './federated.ts';
import { bootstrapCertificateFederated } from './federated-bootstrap.ts';
import { defaultAudience, defaultUserPrefix, userPrefixProblem } from '../core/bootstrap/federation.ts';

export interface BootstrapOptions extends ClusterPair {
  readonly ttl: string;
  readonly namespace: string;
  /** certificate (default): a bootstrap token for the CSR API; token: a ServiceAccount and its first token. */
  readonly credential?: string;
  /** Token mode: the target namespace of the ServiceAccount and its lease Secret (default kubeconfig-rotator). */
  readonly targetNamespace?: string;
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
  readonly federated?: {
    readonly serviceAccounts: readonly string[];
    readonly userPrefix?: string | undefined;
    readonly targetType?: string | undefined;
    readonly authenticationConfig?: string | undefined;
    readonly allowAnonymousDiscovery?: boolean;
    readonly clusterRoles?: readonly string[];
  };
  readonly secretName: string | undefined;
  readonly server: string | undefined;
  readonly dryRun: boolean;
  readonly out: NodeJS.WritableStream;
  readonly err: NodeJS.WritableStream;
}

// Long enough to bootstrap; short enough that a leaked token soon stops mattering.
const MAX_TTL_MS = 7 * 86_400_000;

export async function runBootstrap(given: BootstrapOptions): Promise<number> {
  const options = {
    ...given,
    credential: given.credential ?? 'certificate',
    targetNamespace: given.targetNamespace ?? DEFAULT_TOKEN_NAMESPACE,
    maxTokenTtl: given.maxTokenTtl ?? '24h',
    audiences: given.audiences ?? [],
  };
  const problems: string[] = [];
  // Each names objects and is a label value: at most 63 characters.
  for (const [flag, value] of [
    ['--source-name', options.source],
    ['--target-name', options.target],
    ['--namespace', options.namespace],
    ['--target-namespace', options.targetNamespace],
  ] as const) {
    if (!dnsLabel.safeParse(value).success)
      problems.push(`${flag} "${value}" must be a DNS label (a-z, 0-9, -; at most 63 characters)`);
  }
  const tokenMode = options.credential === 'token';
  if (!['certificate', 'token', 'federated'].includes(options.credential))
    problems.push(`--credential ${options.credential} must be certificate, token or federated`);
  const bootstrapWith = given.bootstrapWith ?? 'token';
  if (!['token', 'federated'].includes(bootstrapWith))
    problems.push(`--bootstrap-with ${bootstrapWith} must be token or federated`);
  else if (given.bootstrapWith !== undefined && options.credential !== 'certificate')
    problems.push('--bootstrap-with is for --credential certificate only');
  // A certificate target's federated bootstrap needs the same trust as a federated target.
  const federatedBootstrap = options.credential === 'certificate' && bootstrapWith === 'federated';
  if (federatedBootstrap && (given.federated?.clusterRoles?.length ?? 0) > 0)
    problems.push(
      "--cluster-role is for --credential federated: with --bootstrap-with federated the certificate's identity is what is granted, not the bootstrap user",
    );
  const federated =
    options.credential === 'federated' || federatedBootstrap ? federatedOptions(options, problems) : undefined;
  // The TokenRequest API issues nothing shorter than 10 minutes.
  const minTtlMs = tokenMode ? 600_000 : 10_000;
  let ttlMs = 0;
  try {
    ttlMs = parseDuration(options.ttl);
    if (ttlMs < minTtlMs || ttlMs > MAX_TTL_MS)
      problems.push(`--ttl ${options.ttl} must be between ${tokenMode ? '10m' : '10s'} and 7d`);
  } catch (error) {
    problems.push(`--ttl: ${(error as Error).message}`);
  }
  if (!tokenMode && given.maxTokenTtl !== undefined) problems.push('--max-token-ttl is for --credential token only');
  if (options.credential === 'certificate' && !federatedBootstrap && given.audiences?.[0] !== undefined)
    problems.push('--audience is for --credential token or federated, or --bootstrap-with federated, only');
  if (federated === undefined && (given.federated?.serviceAccounts.length ?? 0) > 0)
    problems.push('--service-account is for --credential federated only');
  let maxTokenTtlMs = 0;
  if (tokenMode) {
    try {
      maxTokenTtlMs = parseDuration(options.maxTokenTtl);
      if (maxTokenTtlMs < 600_000 || maxTokenTtlMs % 1000 !== 0)
        problems.push(`--max-token-ttl ${options.maxTokenTtl} must be whole seconds, at least 10m`);
      else if (ttlMs > maxTokenTtlMs)
        problems.push(`--ttl ${options.ttl} is longer than --max-token-ttl ${options.maxTokenTtl}`);
    } catch (error) {
      problems.push(`--max-token-ttl: ${(error as Error).message}`);
    }
    for (const audience of options.audiences)
      if (audience === '' || /\p{Cc}/u.test(audience))
        problems.push(`--audience ${JSON.stringify(audience)} must be non-empty, without control characters`);
  }
  let target: KubeConfig | undefined;
  let source: KubeConfig | undefined;
  let caPem: string | undefined;
  try {
    target = loadContext(options.targetKubeconfig, options.targetContext, 'target');
    caPem = clusterCa(target, 'target');
  } catch (error) {
    problems.push((error as Error).message);
  }
  try {
    source = loadContext(options.sourceKubeconfig, options.sourceContext, 'source');
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (problems.length > 0 || target === undefined || source === undefined || caPem === undefined) {
    writeProblems(options.err, 'bootstrap', problems);
    return 2;
  }

  const cluster = target.getCurrentCluster();
  const server = options.server ?? cluster?.server ?? '';
  // The name the target's certificate is checked against (a load balancer, a tunnel): every client needs it.
  const tlsServerName = cluster?.tlsServerName === '' ? undefined : cluster?.tlsServerName;
  const secretName = options.secretName ?? `kubeconfig-rotator-bootstrap-${options.target}`;
  if (federated !== undefined) {
    let sourceCaPem: string | undefined;
    try {
      sourceCaPem = clusterCa(source, 'source');
    } catch {
      sourceCaPem = undefined;
    }
    try {
      const common = { ...federated, out: options.out, secretName, dryRun: options.dryRun };
      const endpoint = { server, caPem, tlsServerName, sourceCaPem };
      return federatedBootstrap
        ? await bootstrapCertificateFederated(common, { target, source }, endpoint)
        : await bootstrapFederated(common, { target, source }, endpoint);
    } catch (error) {
      if (!(error instanceof BootstrapError)) throw error;
      options.err.write(`kubeconfig-rotator bootstrap: ${error.message}\n`);
      return 1;
    }
  }
  if (tokenMode)
    return bootstrapTokenMode(
      options,
      { target, source },
      { server, caPem, tlsServerName, ttlMs, secretName },
      { maxExpirationSeconds: maxTokenTtlMs / 1000, audiences: options.audiences },
    );
  const token = generateBootstrapToken((count) => randomBytes(count));
  const expiration = new Date(Date.now() + ttlMs);
  const plan = bootstrapPlan({
    source: options.source,
    target: options.target,
    token,
    expiration,
    server,
    caPem,
    tlsServerName,
    sourceNamespace: options.namespace,
    secretName,
  });

  if (options.dryRun) {
    printPlan(options.out, redactPlan(plan), { target, source }, { server, tlsServerName });
    return 0;
  }

  try {
    await reachable(target, 'target');
    await reachable(source, 'source');
    for (const object of plan.target) await apply(target, object, 'target');
    const refused = await verifyToken(target, options.source, bootstrapTokenString(token), plan.target);
    if (refused !== undefined) {
      options.err.write(refused);
      return 1;
    }
    for (const object of plan.source) await apply(source, object, 'source');
    const removed = await removeOlderTokens(target, options.source, token.id);
    const write = (line: string) => options.out.write(`${line}\n`);
    write(`target ${server}:`);
    write(
      `  bootstrap token ${token.id} (user ${bootstrapUser(token)}, group ${bootstrapGroup(options.source)}), expires ${expiration.toISOString()}`,
    );
    write(
      `  ClusterRoleBinding kubeconfig-rotator:bootstrap:${options.source} lets that group create/get/list/watch CSRs, nothing else`,
    );
    if (removed.length > 0) write(`  removed older tokens of this source: ${removed.join(', ')}`);
    write(`source ${source.getCurrentCluster()?.server ?? ''}:`);
    write(
      `  Secret ${options.namespace}/${secretName} (key ${BOOTSTRAP_SECRET_KEY}) holds the bootstrap kubeconfig; mount it as the sidecar's bootstrapKubeconfig`,
    );
    write(
      `The approver must have a policy for source "${options.source}" naming group ${bootstrapGroup(options.source)}.`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof BootstrapError)) throw error;
    options.err.write(`kubeconfig-rotator bootstrap: ${error.message}\n`);
    return 1;
  }
}

/**
 * The new token, used once as the sidecar will use it: undefined when the target accepts it in the source's
 * group; otherwise the report (what is wrong, the fix, what was created and how to remove it). The source's
 * Secret is not written then: a sidecar given a token the target refuses would only loop on 401.
 */
async function verifyToken(
  target: KubeConfig,
  source: string,
  token: string,
  created: readonly KubeObject[],
): Promise<string | undefined> {
  const result = bootstrapTokenCheck(source, await reviewToken(target, token, () => Date.now()));
  if (result.status === 'pass') return undefined;
  const removable = created.filter((object) => object.kind !== 'ClusterRole');
  return [
    `kubeconfig-rotator bootstrap: ${result.detail}`,
    `  fix: ${result.fix ?? ''}`,
    `  see: ${docsSection(result.id)}`,
    'created in the target (the source was not changed):',
    ...created.map((object) => `  ${describeObject(object)}`),
    'remove them with the target kubeconfig (the bootstrap token also expires by itself):',
    ...removable.map(
      (object) =>
        `  kubectl delete ${object.kind.toLowerCase()} ${object.metadata.namespace === undefined ? '' : `--namespace ${object.metadata.namespace} `}${object.metadata.name}`,
    ),
    `  (ClusterRole ${CSR_REQUESTER_ROLE} is shared by every source: leave it while others use it)`,
    '',
  ].join('\n');
}

const describeObject = (object: KubeObject) =>
  `${object.kind} ${object.metadata.namespace === undefined ? '' : `${object.metadata.namespace}/`}${object.metadata.name}`;

/** Federated mode's options, checked; each problem is added to `problems`. */
function federatedOptions(
  options: BootstrapOptions & { readonly audiences: readonly string[] },
  problems: string[],
): Omit<FederatedOptions, 'out' | 'secretName' | 'dryRun'> {
  const given = options.federated ?? { serviceAccounts: [] };
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
  if (options.audiences.length > 1) problems.push('--audience: a federated target takes one audience');
  if (targetType === 'eks' && given.authenticationConfig !== undefined)
    problems.push('--authentication-config is for self-managed targets (EKS takes an identity provider)');
  const userPrefix = given.userPrefix ?? defaultUserPrefix(options.source);
  const prefixProblem = userPrefixProblem(userPrefix);
  if (prefixProblem !== undefined) problems.push(`--user-prefix ${JSON.stringify(userPrefix)} ${prefixProblem}`);
  return {
    source: options.source,
    target: options.target,
    namespace: options.namespace,
    serviceAccounts,
    audience: options.audiences[0] ?? defaultAudience(options.target),
    userPrefix,
    targetType: targetType === 'eks' ? 'eks' : 'self-managed',
    authenticationConfig: given.authenticationConfig,
    allowAnonymousDiscovery: given.allowAnonymousDiscovery === true,
    clusterRoles: given.clusterRoles ?? [],
  };
}

/** The plan, its credentials redacted; the server the bootstrap kubeconfig names is shown (a URL is no secret). */
function printPlan(
  out: NodeJS.WritableStream,
  plan: BootstrapPlan,
  clusters: { readonly target: KubeConfig; readonly source: KubeConfig },
  bootstrap: { readonly server: string; readonly tlsServerName: string | undefined },
): void {
  out.write(`# target cluster (${clusters.target.getCurrentCluster()?.server ?? '?'})\n`);
  for (const object of plan.target) out.write(`---\n${stringify(object)}`);
  out.write(`# source cluster (${clusters.source.getCurrentCluster()?.server ?? '?'})\n`);
  out.write(
    `# the bootstrap kubeconfig (key ${BOOTSTRAP_SECRET_KEY}) sends the sidecar to server ${bootstrap.server}` +
      ` with the target CA${bootstrap.tlsServerName === undefined ? '' : `, checking its certificate for ${bootstrap.tlsServerName} (the target context's tls-server-name)`}` +
      ' (--server to change it); its token is redacted\n',
  );
  for (const object of plan.source) out.write(`---\n${stringify(object)}`);
}

interface Endpoint {
  readonly server: string;
  readonly caPem: string;
  readonly tlsServerName: string | undefined;
  readonly ttlMs: number;
  readonly secretName: string;
}

/**
 * Token mode: the ServiceAccount, its lease Secret and its self-token RBAC in the target, then a first token
 * (bound to the lease) in the source's bootstrap Secret. A re-run converges and issues a fresh first token.
 */
async function bootstrapTokenMode(
  options: BootstrapOptions & { readonly targetNamespace: string },
  clusters: { readonly target: KubeConfig; readonly source: KubeConfig },
  endpoint: Endpoint,
  guardrail: GuardrailSettings,
): Promise<number> {
  const { target, source } = clusters;
  const identity = tokenIdentity(options.source, options.targetNamespace);
  const targetObjects = tokenTargetObjects(options.source, identity);
  const expiration = new Date(Date.now() + endpoint.ttlMs);
  const sourceObjects = (token: string) =>
    tokenSourceObjects({
      source: options.source,
      target: options.target,
      server: endpoint.server,
      caPem: endpoint.caPem,
      tlsServerName: endpoint.tlsServerName,
      token,
      expiration,
      sourceNamespace: options.namespace,
      secretName: endpoint.secretName,
    });
  // Without --audience, the guardrail allows the apiserver's own audiences, read from the first token.
  const guardrailObjects = (defaultAudiences: readonly string[]) =>
    tokenGuardrailObjects(options.source, identity, {
      ...guardrail,
      audiences: guardrail.audiences.length > 0 ? guardrail.audiences : defaultAudiences,
    });
  if (options.dryRun) {
    const plan = {
      target: [...targetObjects, ...guardrailObjects(['<the apiserver audiences>'])],
      source: sourceObjects('<token>'),
    };
    printPlan(options.out, redactPlan(plan), { target, source }, endpoint);
    return 0;
  }
  try {
    requireMinor(await reachable(target, 'target'), VALIDATING_ADMISSION_POLICY, 'target');
    await reachable(source, 'source');
    for (const object of targetObjects) await apply(target, object, 'target');
    const token = await firstToken(target, identity, Math.floor(endpoint.ttlMs / 1000), guardrail.audiences);
    const { audiences } = readToken(token.value);
    for (const object of guardrailObjects(audiences)) await apply(target, object, 'target');
    for (const object of sourceObjects(token.value)) await apply(source, object, 'source');
    const write = (line: string) => options.out.write(`${line}\n`);
    const account = `${identity.namespace}/${identity.serviceAccount}`;
    write(`target ${endpoint.server}:`);
    write(
      `  ServiceAccount ${account}: the identity (${serviceAccountUser({ namespace: identity.namespace, name: identity.serviceAccount })}); grant it what the agent needs`,
    );
    write(
      `  Secret ${identity.namespace}/${identity.leaseSecret}: every token of this source is bound to it; delete it to revoke them all`,
    );
    write(`  Role ${identity.namespace}/${identity.role} lets the ServiceAccount create tokens for itself only`);
    write(
      `  ValidatingAdmissionPolicy ${guardrailName(options.source, identity)} refuses its tokens longer than ${String(guardrail.maxExpirationSeconds)} s, not bound to the lease, or for audiences other than ${(guardrail.audiences.length > 0 ? guardrail.audiences : audiences).join(', ')}, and any legacy token Secret for it`,
    );
    write(`  first token expires ${token.expiration}`);
    write(`source ${source.getCurrentCluster()?.server ?? ''}:`);
    write(
      `  Secret ${options.namespace}/${endpoint.secretName} (key ${BOOTSTRAP_SECRET_KEY}) holds the bootstrap kubeconfig; mount it as the sidecar's bootstrapKubeconfig`,
    );
    const audienceField = guardrail.audiences.length > 0 ? `, audiences: [${guardrail.audiences.join(', ')}]` : '';
    write(
      `The sidecar's target: credential: token, serviceAccount: { namespace: ${identity.namespace}, name: ${identity.serviceAccount} }${audienceField}, expirationSeconds at most ${String(guardrail.maxExpirationSeconds)}.`,
    );
    return 0;
  } catch (error) {
    if (!(error instanceof BootstrapError)) throw error;
    options.err.write(`kubeconfig-rotator bootstrap: ${error.message}\n`);
    return 1;
  }
}

async function firstToken(
  target: KubeConfig,
  identity: TokenIdentity,
  expirationSeconds: number,
  audiences: readonly string[],
): Promise<{ value: string; expiration: string }> {
  try {
    const response = await target.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
      namespace: identity.namespace,
      name: identity.serviceAccount,
      body: tokenRequestBody(identity.leaseSecret, expirationSeconds, audiences),
    });
    const value = response.status?.token ?? '';
    if (value === '') throw new Error('the TokenRequest returned no token');
    return { value, expiration: response.status?.expirationTimestamp?.toISOString() ?? '?' };
  } catch (error) {
    throw new BootstrapError(
      `could not request the first token for ServiceAccount ${identity.namespace}/${identity.serviceAccount}: ${describeError(error)}`,
      { cause: error },
    );
  }
}

/** Deletes this source's bootstrap tokens other than the new one; returns their ids. */
async function removeOlderTokens(target: KubeConfig, source: string, keep: string): Promise<string[]> {
  const api = target.makeApiClient(CoreV1Api);
  const labelSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY[MANAGED_BY_LABEL]},${SOURCE_LABEL}=${source}`;
  const removed: string[] = [];
  try {
    const list = await api.listNamespacedSecret({ namespace: 'kube-system', labelSelector });
    for (const secret of list.items) {
      const name = secret.metadata?.name ?? '';
      if (secret.type !== 'bootstrap.kubernetes.io/token' || name === `bootstrap-token-${keep}`) continue;
      await api.deleteNamespacedSecret({ namespace: 'kube-system', name });
      removed.push(name.replace('bootstrap-token-', ''));
    }
  } catch (error) {
    throw new BootstrapError(
      `the new token works, but older tokens of source ${source} could not be removed: ${describeError(error)}`,
      { cause: error },
    );
  }
  return removed;
}
