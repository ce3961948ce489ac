// What `check` observes of the source after bootstrap: the charts' alert rules, each injector webhook (asked with
// a dry-run pod), the bootstrap Secret, and whether the kubeconfig in it verifies the target's certificate.
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  KubeConfig,
  VersionApi,
  type V1MutatingWebhook,
  type V1MutatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { BOOTSTRAP_SECRET_KEY } from '../core/bootstrap/plan.ts';
import { alertsCheck } from '../core/check/cluster.ts';
import { isTlsVerificationCode, type CredentialKind } from '../core/check/common.ts';
import type { CheckResult } from '../core/check/model.ts';
import {
  bootstrapSecretCheck,
  bootstrapSecretUnreadableCheck,
  injectorWebhookCheck,
  labelSelectorString,
  publishedEndpointCheck,
  type WebhookTrial,
} from '../core/check/source.ts';
import { describeError, httpStatus } from '../io/kube/errors.ts';
import { abortable } from './abortable.ts';
import { bounded, errorCodes, readOptional } from './bounded.ts';
import { clusterChecks, readAlerts } from './cluster.ts';
import type { CheckOptions } from './options.ts';

export async function sourceChecks(
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
