// `kubeconfig-rotator check`: from an operator's machine, what the target and the source offer (--pre, before
// bootstrap) and what is installed and working (after). Reads only, except the certificate target's check
// token (created, used once, deleted). Decisions and wording are in src/core/check; this file observes.
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AppsV1Api,
  AuthorizationV1Api,
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  VersionApi,
  type V1MutatingWebhook,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { BOOTSTRAP_SECRET_KEY, bootstrapGroup } from '../core/bootstrap/plan.ts';
import { guardrailName } from '../core/bootstrap/token-guardrail.ts';
import { tokenIdentity } from '../core/bootstrap/token-plan.ts';
import {
  approverChecks,
  approverSeen,
  approverUnreadableCheck,
  firstCertificateFacts,
  policyCheck,
  policyUnreadableCheck,
  type ApproverSeen,
  type PolicySeen,
} from '../core/check/approver.ts';
import { bootstrapTokenCheck, leftBehindCheck, signerCheck } from '../core/check/certificate.ts';
import { reachableCheck, versionChecks } from '../core/check/cluster.ts';
import { isTlsVerificationCode, type ClusterRole, type CredentialKind } from '../core/check/common.ts';
import { bootstrapSecretCheck, bootstrapSecretUnreadableCheck, publishedEndpointCheck } from '../core/check/source.ts';
import {
  guardrailCheck,
  guardrailUnreadableCheck,
  issuerTrustCheck,
  tokenRequestCheck,
  tokenRequestUnreadableCheck,
  type IssuerTrial,
} from '../core/check/token.ts';
import {
  alertsCheck,
  injectorWebhookCheck,
  labelSelectorString,
  type WebhookTrial,
  csrSeen,
  decisionsOn,
  otherApproversCheck,
  OUR_REASONS,
  type AlertsSeen,
  type ApiCsr,
} from '../core/check/in-cluster.ts';
import type { CheckResult } from '../core/check/model.ts';
import { parseKubeVersion, type KubeVersion } from '../core/kube-version.ts';
import { buildCertificationRequest } from '../core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair } from '../core/pki/keys.ts';
import { decideUnread, evaluate } from '../core/policy/evaluate.ts';
import { parsePolicyFile } from '../core/policy/schema.ts';
import { bootstrapUser } from '../core/bootstrap/token.ts';
import { describeError, httpStatus, isNotFound } from '../io/kube/errors.ts';
import { loadContext, writeProblems, type ClusterPair } from '../bootstrap/kube.ts';
import { dnsLabel } from '../core/config/fields.ts';
import { abortable } from './abortable.ts';
import { outputProblems, writeResults, type CheckOutputOptions } from './output.ts';
import { bounded, errorCodes } from './bounded.ts';
import { reviewToken, tryBootstrapToken } from './bootstrap-token.ts';
import { defaultAudience, defaultUserPrefix } from '../core/bootstrap/federation.ts';
import { parseServiceAccountRef } from '../core/bootstrap/federation.ts';
import { trySigner } from './signer.ts';

export interface CheckOptions extends ClusterPair, CheckOutputOptions {
  readonly credential: string;
  /** Before bootstrap: what the clusters must offer, not what bootstrap and the charts create. */
  readonly pre: boolean;
  /** The source namespace of the bootstrap Secret (bootstrap --namespace). */
  readonly namespace: string;
  readonly secretName: string | undefined;
  /** Token targets: the namespace of the source's ServiceAccount (bootstrap --target-namespace). */
  readonly targetNamespace: string;
  readonly approverNamespace: string;
  readonly approverName: string;
  /** The identity the sidecar asks for; with it, the policy is evaluated for a whole first certificate. */
  readonly commonName: string | undefined;
  readonly organizations: readonly string[];
  /** Federated: the source ServiceAccount (NAMESPACE/NAME) whose token the target must accept. */
  readonly serviceAccount: string | undefined;
  readonly audience: string | undefined;
  readonly userPrefix: string | undefined;
  /** Where creating and approving one CSR is not allowed: the signer check is a warning, not run. */
  readonly skipSigner: boolean;
}

const CREDENTIALS: readonly string[] = ['certificate', 'token', 'federated'];
// What the sidecar asks by default (docs/configuration.md): the policy is evaluated for the same.
const SIDECAR_KEY = 'ecdsa-p256';
const SIDECAR_EXPIRATION_SECONDS = 3600;

export async function runCheck(options: CheckOptions): Promise<number> {
  const problems: string[] = [];
  if (!CREDENTIALS.includes(options.credential))
    problems.push(`--credential ${options.credential} must be certificate, token or federated`);
  problems.push(...outputProblems(options.output));
  // They name objects and groups, as in bootstrap.
  for (const [flag, value] of [
    ['--source-name', options.source],
    ['--target-name', options.target],
  ] as const)
    if (!dnsLabel.safeParse(value).success) problems.push(`${flag} "${value}" must be a DNS label (a-z, 0-9, -)`);
  if (options.serviceAccount !== undefined && parseServiceAccountRef(options.serviceAccount) === undefined)
    problems.push(`--service-account ${options.serviceAccount} must be NAMESPACE/NAME`);
  let target: KubeConfig | undefined;
  let source: KubeConfig | undefined;
  try {
    target = loadContext(options.targetKubeconfig, options.targetContext, 'target');
  } catch (error) {
    problems.push((error as Error).message);
  }
  // The source is optional: without it, only the target is checked.
  if (options.sourceKubeconfig !== undefined || options.sourceContext !== undefined) {
    try {
      source = loadContext(options.sourceKubeconfig, options.sourceContext, 'source');
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  if (problems.length > 0 || target === undefined) {
    writeProblems(options.err, 'check', problems);
    return 2;
  }
  const credential = options.credential as CredentialKind;
  const results = [...(await targetChecks(target, credential, options))];
  if (credential === 'federated' && !options.pre) results.push(await issuerTrust(target, source, options));
  if (source !== undefined) results.push(...(await sourceChecks(source, credential, options)));
  return writeResults(results, options);
}

async function clusterChecks(
  kubeConfig: KubeConfig,
  role: ClusterRole,
  credential: CredentialKind,
): Promise<{ readonly results: CheckResult[]; readonly reachable: boolean }> {
  const server = kubeConfig.getCurrentCluster()?.server ?? '?';
  try {
    const body = await bounded(`the ${role} cluster's /version`, (signal) =>
      kubeConfig.makeApiClient(VersionApi).getCode({}, abortable(signal)),
    );
    const version: KubeVersion | undefined = parseKubeVersion(body);
    return {
      results: [reachableCheck(role, { ok: true, server, version }), ...versionChecks(role, version, credential)],
      reachable: true,
    };
  } catch (error) {
    const seen = { ok: false, server, status: httpStatus(error), message: describeError(error) } as const;
    return { results: [reachableCheck(role, seen)], reachable: false };
  }
}

async function targetChecks(
  target: KubeConfig,
  credential: CredentialKind,
  options: CheckOptions,
): Promise<CheckResult[]> {
  const { results, reachable } = await clusterChecks(target, 'target', credential);
  // Nothing else can be learnt from a cluster that does not answer.
  if (!reachable) return results;
  if (credential === 'certificate') {
    const { trial, leftBehind } = await tryBootstrapToken(target, options.source, options.now);
    results.push(bootstrapTokenCheck(options.source, trial));
    if (leftBehind !== undefined) results.push(leftBehindCheck(leftBehind));
    results.push(signerCheck(options.skipSigner ? { result: 'skipped' } : await trySigner(target, options.now)));
    const approver = await readApprover(target, options);
    results.push(...(approver.results ?? approverChecks(approver.seen, options.now())));
    results.push(await readPolicy(target, options));
    if (!options.pre) results.push(await otherApprovers(target, options));
  }
  if (credential === 'token' && !options.pre) results.push(...(await tokenChecks(target, options)));
  if (!options.pre) results.push(alertsCheck('target', await readAlerts(target)));
  return results;
}

/** CSRs of this source (its bootstrap group, or the sidecar's identity renewing) decided by another approver. */
async function otherApprovers(target: KubeConfig, options: CheckOptions): Promise<CheckResult> {
  const scope = `source ${options.source}`;
  try {
    const list = await bounded('listing CSRs', (signal) =>
      target
        .makeApiClient(CertificatesV1Api)
        .listCertificateSigningRequest(
          { fieldSelector: 'spec.signerName=kubernetes.io/kube-apiserver-client', limit: 500 },
          abortable(signal),
        ),
    );
    const requesters = {
      users: options.commonName === undefined ? [] : [options.commonName],
      groups: [bootstrapGroup(options.source)],
    };
    const seen = decisionsOn((list.items as ApiCsr[]).map(csrSeen), requesters);
    return otherApproversCheck(scope, { result: 'listed', ...seen }, `reasons ${OUR_REASONS.slice(0, 2).join(', ')}`);
  } catch (error) {
    return otherApproversCheck(scope, { result: 'unreadable', message: describeError(error) }, '');
  }
}

const INJECTOR_SELECTOR = 'app.kubernetes.io/component=injector,app.kubernetes.io/part-of=kubeconfig-rotator';
const INJECT_ANNOTATION = 'kubeconfig-rotator.io/inject';

/** Each injector's webhook (the sidecar chart's, by its labels), asked with a dry-run pod; none: no line. */
async function injectorWebhooks(source: KubeConfig, target: string): Promise<CheckResult[]> {
  let configurations: V1MutatingWebhookConfiguration[];
  try {
    configurations = (
      await bounded('listing MutatingWebhookConfigurations', (signal) =>
        source
          .makeApiClient(AdmissionregistrationV1Api)
          .listMutatingWebhookConfiguration({ labelSelector: INJECTOR_SELECTOR }, abortable(signal)),
      )
    ).items;
  } catch (error) {
    return [injectorWebhookCheck('?', { result: 'error', message: describeError(error) })];
  }
  const results: CheckResult[] = [];
  for (const configuration of configurations) {
    const name = configuration.metadata?.name ?? '?';
    for (const webhook of configuration.webhooks ?? [])
      results.push(injectorWebhookCheck(name, await askWebhook(source, webhook, target)));
  }
  return results;
}

async function askWebhook(source: KubeConfig, webhook: V1MutatingWebhook, target: string): Promise<WebhookTrial> {
  const core = source.makeApiClient(CoreV1Api);
  const selector = labelSelectorString(webhook.namespaceSelector ?? {});
  let namespace: string | undefined;
  try {
    const found = await bounded('listing namespaces', (signal) =>
      core.listNamespace({ labelSelector: selector, limit: 1 }, abortable(signal)),
    );
    namespace = found.items[0]?.metadata?.name;
  } catch (error) {
    return { result: 'error', message: describeError(error) };
  }
  if (namespace === undefined) return { result: 'noNamespace', selector: selector === '' ? '(any)' : selector };
  const inNamespace = namespace;
  try {
    const pod = await bounded('a dry-run pod', (signal) =>
      core.createNamespacedPod(
        {
          namespace: inNamespace,
          dryRun: 'All',
          body: {
            metadata: {
              generateName: 'kubeconfig-rotator-check-',
              labels: { ...(webhook.objectSelector?.matchLabels ?? {}) },
              annotations: { [INJECT_ANNOTATION]: target },
            },
            spec: { containers: [{ name: 'check', image: 'registry.k8s.io/pause:3.10' }] },
          },
        },
        abortable(signal),
      ),
    );
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    return containers.length > 1
      ? { result: 'injected', namespace: inNamespace }
      : { result: 'unchanged', namespace: inNamespace };
  } catch (error) {
    const message = describeError(error);
    if (message.includes('failed calling webhook')) return { result: 'failed', namespace: inNamespace, message };
    if (message.includes(`admission webhook "${webhook.name}" denied`))
      return { result: 'denied', namespace: inNamespace, message };
    return { result: 'error', message };
  }
}

/** The Prometheus Operator's PrometheusRule CRD, and the charts' rules (labelled part-of kubeconfig-rotator). */
async function readAlerts(cluster: KubeConfig): Promise<AlertsSeen> {
  try {
    const crd = await readOptional('the PrometheusRule CRD', (signal) =>
      cluster
        .makeApiClient(ApiextensionsV1Api)
        .readCustomResourceDefinition({ name: 'prometheusrules.monitoring.coreos.com' }, abortable(signal)),
    );
    if (crd === undefined) return { result: 'noCrd' };
    const list = (await bounded('listing PrometheusRules', (signal) =>
      cluster.makeApiClient(CustomObjectsApi).listClusterCustomObject(
        {
          group: 'monitoring.coreos.com',
          version: 'v1',
          plural: 'prometheusrules',
          labelSelector: 'app.kubernetes.io/part-of=kubeconfig-rotator',
        },
        abortable(signal),
      ),
    )) as { items?: { metadata?: { namespace?: string; name?: string } }[] };
    const rules = (list.items ?? []).map((rule) => `${rule.metadata?.namespace ?? ''}/${rule.metadata?.name ?? ''}`);
    return { result: 'crd', rules };
  } catch (error) {
    return { result: 'unreadable', message: describeError(error) };
  }
}

/** Reads one object: undefined when it does not exist; any other failure is thrown. */
async function readOptional<T>(what: string, read: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
  try {
    return await bounded(what, read);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function readApprover(
  target: KubeConfig,
  options: CheckOptions,
): Promise<{ readonly seen: ApproverSeen; readonly results?: CheckResult[] }> {
  const { approverNamespace: namespace, approverName: name } = options;
  const where = `${namespace}/${name}`;
  try {
    const deployment = await readOptional(`Deployment ${where}`, (signal) =>
      target.makeApiClient(AppsV1Api).readNamespacedDeployment({ namespace, name }, abortable(signal)),
    );
    const lease = await readOptional(`Lease ${where}`, (signal) =>
      target.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace, name }, abortable(signal)),
    );
    return { seen: approverSeen(namespace, name, { deployment, lease }) };
  } catch (error) {
    return {
      seen: approverSeen(namespace, name, { deployment: undefined, lease: undefined }),
      results: [approverUnreadableCheck(namespace, name, describeError(error))],
    };
  }
}

async function readPolicy(target: KubeConfig, options: CheckOptions): Promise<CheckResult> {
  const namespace = options.approverNamespace;
  const name = `${options.approverName}-policy`;
  const where = `ConfigMap ${namespace}/${name}`;
  let text: string | undefined;
  try {
    const configMap = await readOptional(where, (signal) =>
      target.makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name }, abortable(signal)),
    );
    text = configMap?.data?.['policy.yaml'];
  } catch (error) {
    return policyUnreadableCheck(options.source, where, describeError(error));
  }
  return policyCheck(options.source, policySeen(text, where, options));
}

function policySeen(text: string | undefined, where: string, options: CheckOptions): PolicySeen {
  if (text === undefined) return { result: 'absent', where };
  const parsed = parsePolicyFile(text);
  if (!parsed.ok)
    return {
      result: 'invalid',
      where,
      problems: parsed.problems.map((found) => `${found.path === '' ? '' : `${found.path}: `}${found.message}`),
    };
  const file = parsed.value;
  // The requester a bootstrap token of this source authenticates as (its id does not matter to a policy).
  const tokenUser = bootstrapUser({ id: 'checkk' });
  if (options.commonName === undefined) {
    const requester = { username: tokenUser, groups: [bootstrapGroup(options.source), 'system:bootstrappers'] };
    return { result: 'applies', where, applies: decideUnread(file, file.signerName, requester) === undefined };
  }
  const keys = generateKeyPair(SIDECAR_KEY);
  const csrPem = buildCertificationRequest(
    { commonName: options.commonName, organizations: [...options.organizations] },
    keys,
  );
  const facts = firstCertificateFacts({
    source: options.source,
    tokenUser,
    csrPem,
    usages: clientUsagesFor(SIDECAR_KEY),
    expirationSeconds: SIDECAR_EXPIRATION_SECONDS,
  });
  return { result: 'evaluated', where, commonName: options.commonName, evaluation: evaluate(facts, file) };
}

async function tokenChecks(target: KubeConfig, options: CheckOptions): Promise<CheckResult[]> {
  const identity = tokenIdentity(options.source, options.targetNamespace);
  const account = `${identity.namespace}/${identity.serviceAccount}`;
  const results: CheckResult[] = [];
  try {
    const serviceAccount = await readOptional(`ServiceAccount ${account}`, (signal) =>
      target
        .makeApiClient(CoreV1Api)
        .readNamespacedServiceAccount(
          { namespace: identity.namespace, name: identity.serviceAccount },
          abortable(signal),
        ),
    );
    const review = await bounded('SubjectAccessReview', (signal) =>
      target.makeApiClient(AuthorizationV1Api).createSubjectAccessReview(
        {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: `system:serviceaccount:${identity.namespace}:${identity.serviceAccount}`,
              groups: [
                'system:serviceaccounts',
                `system:serviceaccounts:${identity.namespace}`,
                'system:authenticated',
              ],
              resourceAttributes: {
                verb: 'create',
                resource: 'serviceaccounts',
                subresource: 'token',
                namespace: identity.namespace,
                name: identity.serviceAccount,
              },
            },
          },
        },
        abortable(signal),
      ),
    );
    results.push(
      tokenRequestCheck(account, {
        exists: serviceAccount !== undefined,
        allowed: review.status?.allowed === true,
        reason: review.status?.reason ?? '',
      }),
    );
  } catch (error) {
    results.push(tokenRequestUnreadableCheck(account, describeError(error)));
  }
  const name = guardrailName(options.source, identity);
  try {
    const api = target.makeApiClient(AdmissionregistrationV1Api);
    const policy = await readOptional(`ValidatingAdmissionPolicy ${name}`, (signal) =>
      api.readValidatingAdmissionPolicy({ name }, abortable(signal)),
    );
    const binding = await readOptional(`ValidatingAdmissionPolicyBinding ${name}`, (signal) =>
      api.readValidatingAdmissionPolicyBinding({ name }, abortable(signal)),
    );
    results.push(guardrailCheck(name, { policy: policy !== undefined, binding: binding !== undefined }));
  } catch (error) {
    results.push(guardrailUnreadableCheck(name, describeError(error)));
  }
  return results;
}

async function sourceChecks(
  source: KubeConfig,
  credential: CredentialKind,
  options: CheckOptions,
): Promise<CheckResult[]> {
  const { results, reachable } = await clusterChecks(source, 'source', credential);
  // Before bootstrap there is no bootstrap Secret yet.
  if (!reachable || options.pre) return results;
  results.push(alertsCheck('source', await readAlerts(source)));
  results.push(...(await injectorWebhooks(source, options.target)));
  const name = options.secretName ?? `kubeconfig-rotator-bootstrap-${options.target}`;
  const where = `${options.namespace}/${name}`;
  try {
    const secret = await readOptional(`Secret ${where}`, (signal) =>
      source.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: options.namespace, name }, abortable(signal)),
    );
    const kubeconfig = secret?.data?.[BOOTSTRAP_SECRET_KEY];
    results.push(
      bootstrapSecretCheck(where, { exists: secret !== undefined, hasKubeconfig: kubeconfig !== undefined }),
    );
    if (kubeconfig !== undefined) results.push(await publishedEndpoint(`Secret ${where}`, kubeconfig));
  } catch (error) {
    results.push(bootstrapSecretUnreadableCheck(where, describeError(error)));
  }
  return results;
}

/** Connects as the sidecar will, with the server, CA and tls-server-name of the kubeconfig bootstrap wrote. */
async function publishedEndpoint(where: string, base64: string): Promise<CheckResult> {
  const published = new KubeConfig();
  try {
    published.loadFromString(Buffer.from(base64, 'base64').toString('utf8'));
  } catch (error) {
    return publishedEndpointCheck(
      where,
      { server: '?', tlsServerName: undefined },
      {
        result: 'invalid',
        message: describeError(error),
      },
    );
  }
  const cluster = published.getCurrentCluster();
  const endpoint = { server: cluster?.server ?? '?', tlsServerName: cluster?.tlsServerName || undefined };
  if (cluster === null)
    return publishedEndpointCheck(where, endpoint, { result: 'invalid', message: 'it has no current cluster' });
  try {
    await bounded(`${endpoint.server}/version`, (signal) =>
      published.makeApiClient(VersionApi).getCode({}, abortable(signal)),
    );
    return publishedEndpointCheck(where, endpoint, { result: 'answered' });
  } catch (error) {
    // Any HTTP status (401: an expired bootstrap token) means the TLS handshake verified the server.
    if (httpStatus(error) !== undefined) return publishedEndpointCheck(where, endpoint, { result: 'answered' });
    const message = describeError(error);
    const tls = errorCodes(error).some(isTlsVerificationCode);
    return publishedEndpointCheck(where, endpoint, { result: tls ? 'tls' : 'unreachable', message });
  }
}

/** A real token of the source's ServiceAccount, for the target's audience, in a SelfSubjectReview on the target. */
async function issuerTrust(
  target: KubeConfig,
  source: KubeConfig | undefined,
  options: CheckOptions,
): Promise<CheckResult> {
  const audience = options.audience ?? defaultAudience(options.target);
  const userPrefix = options.userPrefix ?? defaultUserPrefix(options.source);
  const ref = options.serviceAccount === undefined ? undefined : parseServiceAccountRef(options.serviceAccount);
  const check = (trial: IssuerTrial) => issuerTrustCheck(options.serviceAccount, audience, userPrefix, trial);
  if (ref === undefined || source === undefined) return check({ result: 'notAsked' });
  let token: string;
  try {
    const response = await bounded('TokenRequest', (signal) =>
      source.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken(
        {
          namespace: ref.namespace,
          name: ref.name,
          // The shortest the API issues; bound to nothing, used once, by this process only.
          body: { spec: { audiences: [audience], expirationSeconds: 600 } },
        },
        abortable(signal),
      ),
    );
    token = response.status?.token ?? '';
    if (token === '') return check({ result: 'noToken', message: 'the TokenRequest returned no token' });
  } catch (error) {
    return check({ result: 'noToken', message: describeError(error) });
  }
  const trial = await reviewToken(target, token, options.now);
  switch (trial.result) {
    case 'reviewed':
      return check({ result: 'reviewed', username: trial.username });
    case 'refused':
      return check({ result: 'refused', message: trial.message });
    case 'error':
    case 'notCreated':
      return check({ result: 'error', message: trial.message });
  }
}
