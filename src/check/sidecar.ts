// `kubeconfig-rotator check --config FILE`: a sidecar's own view of each of its targets, from its pod (kubectl
// exec) or from the sidecar chart's `helm test` pod, which mounts the same config and bootstrap Secrets. The
// config is read with the sidecar's own loader; every request goes through the sidecar's own client (rest.ts)
// with the bootstrap kubeconfig (the target) and the pod's in-cluster credentials (the source). Reads only.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../core/config/validate.ts';
import { credentialKindOf, type TargetConfig } from '../core/config/sidecar.ts';
import {
  bootstrapCredentialCheck,
  bootstrapKubeconfigCheck,
  publishedCheck,
  rbacCheck,
  targetEndpointCheck,
  type AccessAsked,
  type CredentialTrial,
  type PublishedSeen,
  type SidecarWarning,
} from '../core/check/sidecar.ts';
import { isTlsVerificationCode, type EndpointTrial } from '../core/check/common.ts';
import type { CheckResult } from '../core/check/model.ts';
import { KubeConfigError, loadClientConfig } from '../io/kube/load-client-config.ts';
import { describeError, httpStatus, isNotFound, KubeApiError } from '../io/kube/errors.ts';
import { createKubeClient, type KubeClient } from '../io/kube/rest.ts';
import { loadSidecarConfig, podIdentity, type LoadedConfig } from '../sidecar/config.ts';
import type { BootstrapCredential } from '../sidecar/bootstrap-credential.ts';
import { statusOfPath, statusOfSecretObject } from '../sidecar/status.ts';
import { invalidUsage, outputProblems, writeResults, type CheckOutputOptions } from './output.ts';
import { bounded, errorCodes } from './bounded.ts';

export interface SidecarCheckOptions extends CheckOutputOptions {
  readonly configPath: string;
  /** NAMESPACE/NAME of the sidecar's ServiceAccount when this process runs as another (the helm test pod). */
  readonly serviceAccount: string | undefined;
  readonly env: NodeJS.ProcessEnv;
}

const USER_AGENT = 'kubeconfig-rotator-check';

export async function runSidecarCheck(options: SidecarCheckOptions): Promise<number> {
  const problems = outputProblems(options.output);
  const account = serviceAccountParts(options.serviceAccount, problems);
  const loaded = readSidecarConfig(options, account, problems);
  const source = loaded === undefined ? undefined : sourceClient(loaded, options.env, problems);
  if (problems.length > 0 || loaded === undefined || source === undefined) {
    return invalidUsage(options.err, problems);
  }
  return writeResults(await sidecarChecks(loaded, source, options, account), options);
}

/** --service-account split into its parts; a problem unless they are NAMESPACE/NAME. */
function serviceAccountParts(value: string | undefined, problems: string[]): string[] | undefined {
  const parts = value?.split('/');
  if (value !== undefined && (parts?.length !== 2 || parts.some((part) => part === '')))
    problems.push(`--service-account ${value} must be NAMESPACE/NAME`);
  return parts;
}

/** The sidecar's config read with its own loader; a problem (not a throw) when it is invalid. */
function readSidecarConfig(
  options: SidecarCheckOptions,
  account: readonly string[] | undefined,
  problems: string[],
): LoadedConfig | undefined {
  try {
    // The sidecar's own ServiceAccount (--service-account, when this pod runs as another) where a target names none.
    const pod = podIdentity(options.env);
    return loadSidecarConfig(options.configPath, {
      ...pod,
      namespace: account?.[0] ?? pod.namespace,
      serviceAccount: account?.[1] ?? pod.serviceAccount,
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(`invalid sidecar configuration: ${error.message}`);
    return undefined;
  }
}

/** The client of the source as the sidecar makes it; a problem when its sourceKubeconfig cannot be read. */
function sourceClient(loaded: LoadedConfig, env: NodeJS.ProcessEnv, problems: string[]): KubeClient | undefined {
  try {
    return createKubeClient(loadClientConfig(loaded.config.sourceKubeconfig, { env }), { userAgent: USER_AGENT });
  } catch (error) {
    if (!(error instanceof KubeConfigError)) throw error;
    problems.push(`sourceKubeconfig: ${error.message}`);
    return undefined;
  }
}

/** Each target's checks, then the sidecar's RBAC in the source; the source client is closed after them. */
async function sidecarChecks(
  loaded: LoadedConfig,
  source: KubeClient,
  options: SidecarCheckOptions,
  account: readonly string[] | undefined,
): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  try {
    for (const target of loaded.config.targets)
      results.push(...(await targetChecks(target, loaded.bootstraps.get(target.name), source, options)));
    const namespace = options.env.POD_NAMESPACE ?? source.config.namespace;
    const who =
      account?.[0] !== undefined && account[1] !== undefined ? { namespace: account[0], name: account[1] } : undefined;
    results.push(await rbac(loaded, source, namespace, who));
  } finally {
    await source.close();
  }
  return results;
}

async function targetChecks(
  target: TargetConfig,
  bootstrap: BootstrapCredential | undefined,
  source: KubeClient,
  options: SidecarCheckOptions,
): Promise<CheckResult[]> {
  const margin = target.rotation.minRemainingSeconds;
  const published: { readonly sink: string; readonly seen: PublishedSeen }[] = [];
  const { directory, secret } = target.sinks;
  if (directory !== undefined)
    published.push({ sink: `directory ${directory.path}`, seen: readDirectory(directory.path, options.now()) });
  if (secret !== undefined)
    published.push({
      sink: `Secret ${secret.namespace}/${secret.name}`,
      seen: await readSecret(source, secret.namespace, secret.name, secret.key, options.now()),
    });
  const publishedValid = published.some(({ seen }) => seen.result === 'read' && seen.secondsLeft > margin);
  const results: CheckResult[] = [];
  if (bootstrap === undefined) {
    results.push(
      bootstrapKubeconfigCheck(target.name, target.bootstrapKubeconfig, { result: 'absent', publishedValid }),
    );
  } else {
    results.push(bootstrapKubeconfigCheck(target.name, target.bootstrapKubeconfig, { result: 'read' }));
    const config = { ...bootstrap.config, server: target.server ?? bootstrap.server };
    // The bootstrap credential the sidecar starts with; the same client's /version checks the endpoint.
    const client = createKubeClient(config, { credentials: bootstrap.credentials, userAgent: USER_AGENT });
    try {
      const endpoint = { server: config.server, tlsServerName: config.tlsServerName };
      results.push(targetEndpointCheck(target.name, endpoint, await tryEndpoint(client)));
      if (target.credential !== 'federated')
        results.push(
          bootstrapCredentialCheck(target.name, credentialKindOf(target), await tryCredential(client), publishedValid),
        );
    } finally {
      await client.close();
    }
  }
  const warning = publishedValid ? undefined : await lastWarning(source, options.env.POD_NAMESPACE, target.name);
  results.push(...published.map(({ sink, seen }) => publishedCheck(target.name, sink, margin, seen, warning)));
  return results;
}

/**
 * The sidecar's latest Warning Event about `target` on a pod of `namespace` (its messages start "<target>: ").
 * Undefined when there is none or this process may not list Events (the sidecar itself may only write them).
 */
async function lastWarning(
  source: KubeClient,
  namespace: string | undefined,
  target: string,
): Promise<SidecarWarning | undefined> {
  if (namespace === undefined) return undefined;
  try {
    const list = await bounded('listing Events', (signal) =>
      source.request<{
        items?: { reason?: string; message?: string; lastTimestamp?: string; eventTime?: string }[];
      }>('GET', `/api/v1/namespaces/${namespace}/events`, {
        query: { fieldSelector: 'type=Warning,involvedObject.kind=Pod', limit: 500 },
        signal,
      }),
    );
    const when = (event: { lastTimestamp?: string; eventTime?: string }) =>
      Date.parse(event.lastTimestamp ?? event.eventTime ?? '') || 0;
    const latest = (list.items ?? [])
      .filter((event) => event.message?.startsWith(`${target}: `) === true)
      .sort((a, b) => when(b) - when(a))[0];
    return latest === undefined ? undefined : { reason: latest.reason ?? '', message: latest.message ?? '' };
  } catch {
    return undefined;
  }
}

async function tryEndpoint(client: KubeClient): Promise<Exclude<EndpointTrial, { result: 'invalid' }>> {
  try {
    await bounded('/version', (signal) => client.request('GET', '/version', { signal }));
    return { result: 'answered' };
  } catch (error) {
    // Any HTTP status (a 401 from a refused bootstrap credential) means the TLS handshake verified the target.
    if (error instanceof KubeApiError) return { result: 'answered' };
    const message = describeError(error);
    return { result: errorCodes(error).some(isTlsVerificationCode) ? 'tls' : 'unreachable', message };
  }
}

async function tryCredential(client: KubeClient): Promise<CredentialTrial> {
  try {
    const review = await bounded('SelfSubjectReview', (signal) =>
      client.request<{ status?: { userInfo?: { username?: string } } }>(
        'POST',
        '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }, signal },
      ),
    );
    return { result: 'reviewed', username: review.status?.userInfo?.username ?? '' };
  } catch (error) {
    return httpStatus(error) === 401
      ? { result: 'refused', message: describeError(error) }
      : { result: 'error', message: describeError(error) };
  }
}

function readDirectory(path: string, now: number): PublishedSeen {
  // The helm test pod mounts the config and the bootstrap Secrets, not the sidecar's own volume (whose
  // directory, the sink's parent, exists in the sidecar's container even before anything is published).
  if (!existsSync(dirname(path))) return { result: 'notMounted' };
  if (!existsSync(join(path, 'kubeconfig'))) return { result: 'absent' };
  try {
    const status = statusOfPath(path, now);
    return { result: 'read', identity: status.identity, secondsLeft: status.secondsLeft };
  } catch (error) {
    return { result: 'unreadable', message: describeError(error) };
  }
}

async function readSecret(
  source: KubeClient,
  namespace: string,
  name: string,
  key: string | undefined,
  now: number,
): Promise<PublishedSeen> {
  try {
    const secret = await bounded(`Secret ${namespace}/${name}`, (signal) =>
      source.request<Parameters<typeof statusOfSecretObject>[1]>(
        'GET',
        `/api/v1/namespaces/${namespace}/secrets/${name}`,
        { signal },
      ),
    );
    const status = statusOfSecretObject(`${namespace}/${name}`, secret, key, now);
    return { result: 'read', identity: status.identity, secondsLeft: status.secondsLeft };
  } catch (error) {
    if (isNotFound(error)) return { result: 'absent' };
    return { result: 'unreadable', message: describeError(error) };
  }
}

/** What the sidecar writes in the source: its Events, and get/update/create on each Secret sink's Secret. */
async function rbac(
  loaded: LoadedConfig,
  source: KubeClient,
  namespace: string | undefined,
  account: { readonly namespace: string; readonly name: string } | undefined,
): Promise<CheckResult> {
  const asked: AccessAsked[] = [];
  if (namespace !== undefined) asked.push({ verb: 'create', resource: 'events', namespace });
  for (const target of loaded.config.targets) {
    const secret = target.sinks.secret;
    if (secret === undefined) continue;
    for (const verb of ['get', 'update'])
      asked.push({ verb, resource: 'secrets', namespace: secret.namespace, name: secret.name });
    asked.push({ verb: 'create', resource: 'secrets', namespace: secret.namespace });
  }
  const seen = await Promise.all(
    asked.map(async (access) => ({ access, allowed: await review(source, access, account) })),
  );
  const who = account === undefined ? 'this pod' : `ServiceAccount ${account.namespace}/${account.name}`;
  return rbacCheck(who, seen);
}

/** A SelfSubjectAccessReview (as this pod), or a SubjectAccessReview as `account`; a string when not asked. */
async function review(
  source: KubeClient,
  access: AccessAsked,
  account: { readonly namespace: string; readonly name: string } | undefined,
): Promise<boolean | string> {
  const resourceAttributes = {
    verb: access.verb,
    resource: access.resource,
    namespace: access.namespace,
    ...(access.name === undefined ? {} : { name: access.name }),
  };
  const [path, spec] =
    account === undefined
      ? ['selfsubjectaccessreviews', { resourceAttributes }]
      : [
          'subjectaccessreviews',
          {
            resourceAttributes,
            user: `system:serviceaccount:${account.namespace}:${account.name}`,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${account.namespace}`, 'system:authenticated'],
          },
        ];
  try {
    const answer = await bounded('an access review', (signal) =>
      source.request<{ status?: { allowed?: boolean } }>('POST', `/apis/authorization.k8s.io/v1/${path}`, {
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: path === 'subjectaccessreviews' ? 'SubjectAccessReview' : 'SelfSubjectAccessReview',
          spec,
        },
        signal,
      }),
    );
    return answer.status?.allowed === true;
  } catch (error) {
    return describeError(error);
  }
}
