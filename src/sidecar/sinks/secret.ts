// Publishing into a Secret of the source cluster: the self-contained kubeconfig under `key` (what Admiralty
// reads) plus tls.crt, tls.key and ca.crt, replaced as a whole with optimistic concurrency. A Secret of
// the same name that kubeconfig-rotator did not create is never overwritten.
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { secretData, type CredentialBundle } from '../../core/kubeconfig/bundle.ts';
import { readCertificate } from '../../core/pki/certificate.ts';
import { isConflict, isNotFound } from '../../io/kube/errors.ts';
import { kubeListWatchSource } from '../../io/kube/informer.ts';
import { objectInformer } from '../../io/kube/until.ts';
import type { Logger } from '../../io/log.ts';
import { storedCredential, type OutputState, type Sink, type StoredCredential } from './sink.ts';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'kubeconfig-rotator';
export const ANNOTATIONS = {
  notAfter: 'kubeconfig-rotator.io/not-after',
  serial: 'kubeconfig-rotator.io/serial',
  identity: 'kubeconfig-rotator.io/identity',
  target: 'kubeconfig-rotator.io/target',
  nextRotation: 'kubeconfig-rotator.io/next-rotation',
} as const;

const CONFLICT_RETRIES = 5;

export interface SecretSinkOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly name: string;
  readonly key: string;
  /** The watch's informer reports its failures here. */
  readonly logger: Logger;
}

export class SecretSink implements Sink {
  readonly kind = 'secret';
  readonly description: string;
  readonly #options: SecretSinkOptions;
  readonly #api: CoreV1Api;

  constructor(options: SecretSinkOptions) {
    this.#options = options;
    this.#api = options.kubeConfig.makeApiClient(CoreV1Api);
    this.description = `secret ${options.namespace}/${options.name}`;
  }

  async read(): Promise<StoredCredential | undefined> {
    const secret = await this.#get();
    return secret === undefined ? undefined : storedCredential(decode(secret), this.#options.key);
  }

  async check(bundle: CredentialBundle): Promise<OutputState> {
    const secret = await this.#get();
    if (secret === undefined) return 'missing';
    return sameData(decode(secret), secretData(bundle, this.#options.key)) ? 'current' : 'damaged';
  }

  async write(bundle: CredentialBundle): Promise<void> {
    const { namespace, name } = this.#options;
    const facts = readCertificate(bundle.certPem);
    const desired = (existing?: V1Secret): V1Secret => ({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name,
        namespace,
        ...(existing?.metadata?.resourceVersion === undefined
          ? {}
          : { resourceVersion: existing.metadata.resourceVersion }),
        labels: { ...existing?.metadata?.labels, [MANAGED_BY_LABEL]: MANAGED_BY },
        annotations: {
          ...existing?.metadata?.annotations,
          [ANNOTATIONS.notAfter]: new Date(facts.notAfter).toISOString(),
          [ANNOTATIONS.serial]: facts.serial,
          [ANNOTATIONS.identity]: facts.subject.commonName,
          [ANNOTATIONS.target]: bundle.name,
          ...(bundle.nextRotation === undefined
            ? {}
            : { [ANNOTATIONS.nextRotation]: new Date(bundle.nextRotation).toISOString() }),
        },
      },
      data: Object.fromEntries(
        Object.entries(secretData(bundle, this.#options.key)).map(([key, value]) => [
          key,
          Buffer.from(value).toString('base64'),
        ]),
      ),
    });
    for (let attempt = 1; ; attempt++) {
      const existing = await this.#get();
      try {
        if (existing === undefined) {
          await this.#api.createNamespacedSecret({ namespace, body: desired() });
        } else {
          if (existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) {
            throw new Error(
              `${this.description} exists and is not managed by kubeconfig-rotator (label ${MANAGED_BY_LABEL}=${MANAGED_BY}); delete it or choose another name`,
            );
          }
          await this.#api.replaceNamespacedSecret({ namespace, name, body: desired(existing) });
        }
        return;
      } catch (error) {
        // Someone wrote in between (409 on replace, or it appeared before our create): read again, retry.
        if (isConflict(error) && attempt < CONFLICT_RETRIES) continue;
        throw new Error(`writing ${this.description} failed`, { cause: error });
      }
    }
  }

  watch(onChange: () => void): Promise<{ close(): Promise<void> }> {
    const { namespace, name, kubeConfig, logger } = this.#options;
    const informer = objectInformer<V1Secret>(
      {
        source: kubeListWatchSource({
          kubeConfig,
          path: `/api/v1/namespaces/${namespace}/secrets`,
          fieldSelector: `metadata.name=${name}`,
          list: (options) => this.#api.listNamespacedSecret({ namespace, ...options }),
        }),
        name,
        describe: this.description,
        logger,
      },
      // Every state is worth a check: the owner compares it with what it published.
      () => {
        onChange();
      },
    );
    informer.start();
    return Promise.resolve({ close: () => informer.stop() });
  }

  async #get(): Promise<V1Secret | undefined> {
    try {
      return await this.#api.readNamespacedSecret({ namespace: this.#options.namespace, name: this.#options.name });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(`reading ${this.description} failed`, { cause: error });
    }
  }
}

function decode(secret: V1Secret): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]),
  );
}

function sameData(actual: Record<string, string>, expected: Record<string, string>): boolean {
  return Object.entries(expected).every(([key, value]) => actual[key] === value);
}
