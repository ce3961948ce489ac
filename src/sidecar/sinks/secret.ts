// Publishing into a Secret of the source cluster, in the layout its consumer reads (src/core/secret-format),
// replaced as a whole with optimistic concurrency. A Secret of the same name that kubeconfig-rotator did not
// create, or of another type (a Secret's type cannot change), is never taken over.
import type { V1Secret } from '@kubernetes/client-node';
import type { CredentialBundle } from '../../core/kubeconfig/bundle.ts';
import type { TargetConfig } from '../../core/config/sidecar.ts';
import { readCredential } from '../../core/credential/credential.ts';
import {
  MANAGED_BY,
  MANAGED_BY_LABEL,
  matchesContent,
  readSecretCredential,
  renderSecret,
  secretType,
  type SecretFormatSettings,
} from '../../core/secret-format/formats.ts';
import { isConflict, isNotFound } from '../../io/kube/errors.ts';
import { restListWatchSource, type KubeClient } from '../../io/kube/rest.ts';
import { objectInformer } from '../../io/kube/until.ts';
import type { Logger } from '../../io/log.ts';
import { verifiedCredential, type OutputState, type Sink, type StoredCredential } from './sink.ts';
export const ANNOTATIONS = {
  notAfter: 'kubeconfig-rotator.io/not-after',
  serial: 'kubeconfig-rotator.io/serial',
  identity: 'kubeconfig-rotator.io/identity',
  target: 'kubeconfig-rotator.io/target',
  nextRotation: 'kubeconfig-rotator.io/next-rotation',
} as const;

const CONFLICT_RETRIES = 5;

export interface SecretSinkOptions {
  /** The source cluster's client, shared with the other targets. */
  readonly client: KubeClient;
  readonly namespace: string;
  readonly name: string;
  readonly settings: SecretFormatSettings;
  /** The watch's informer reports its failures here. */
  readonly logger: Logger;
}

/** The sink a target's `sinks.secret` describes (reference mode defaults to the directory sink's path). */
export function secretSinkOptions(
  client: KubeClient,
  target: TargetConfig,
  sink: NonNullable<TargetConfig['sinks']['secret']>,
  logger: Logger,
): SecretSinkOptions {
  const referenceDirectory =
    sink.reference === undefined ? undefined : (sink.reference.directory ?? target.sinks.directory?.path);
  return {
    client,
    namespace: sink.namespace,
    name: sink.name,
    logger,
    settings: {
      format: sink.format,
      targetName: target.name,
      key: sink.key,
      tlsKeys: sink.tlsKeys,
      clusterName: sink.clusterName,
      referenceDirectory,
      labels: sink.labels,
      annotations: sink.annotations,
    },
  };
}

export class SecretSink implements Sink {
  readonly kind = 'secret';
  readonly description: string;
  readonly #options: SecretSinkOptions;

  constructor(options: SecretSinkOptions) {
    this.#options = options;
    this.description = `secret ${options.namespace}/${options.name}`;
  }

  async read(): Promise<StoredCredential | undefined> {
    const secret = await this.#get();
    return secret === undefined
      ? undefined
      : verifiedCredential(readSecretCredential(decode(secret), this.#options.settings));
  }

  async check(bundle: CredentialBundle): Promise<OutputState> {
    const secret = await this.#get();
    if (secret === undefined) return 'missing';
    const actual = { type: secret.type, labels: secret.metadata?.labels, annotations: secret.metadata?.annotations };
    return matchesContent({ ...actual, data: decode(secret) }, renderSecret(bundle, this.#options.settings))
      ? 'current'
      : 'damaged';
  }

  async write(bundle: CredentialBundle): Promise<void> {
    const { namespace, name, client } = this.#options;
    const facts = readCredential(bundle.credential);
    const content = renderSecret(bundle, this.#options.settings);
    const desired = (existing?: V1Secret): V1Secret => ({
      apiVersion: 'v1',
      kind: 'Secret',
      type: content.type,
      metadata: {
        name,
        namespace,
        ...(existing?.metadata?.resourceVersion === undefined
          ? {}
          : { resourceVersion: existing.metadata.resourceVersion }),
        labels: { ...existing?.metadata?.labels, ...content.labels },
        annotations: {
          ...existing?.metadata?.annotations,
          ...content.annotations,
          [ANNOTATIONS.notAfter]: new Date(facts.notAfter).toISOString(),
          [ANNOTATIONS.serial]: facts.serial,
          [ANNOTATIONS.identity]: facts.user,
          [ANNOTATIONS.target]: bundle.name,
          ...(bundle.nextRotation === undefined
            ? {}
            : { [ANNOTATIONS.nextRotation]: new Date(bundle.nextRotation).toISOString() }),
        },
      },
      data: Object.fromEntries(
        Object.entries(content.data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
      ),
    });
    for (let attempt = 1; ; attempt++) {
      const existing = await this.#get();
      try {
        if (existing === undefined) {
          await client.request('POST', secretsPath(namespace), { body: desired() });
        } else {
          this.#refuseForeign(existing);
          await client.request('PUT', `${secretsPath(namespace)}/${name}`, { body: desired(existing) });
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
    const { namespace, name, client, logger } = this.#options;
    const informer = objectInformer<V1Secret>(
      {
        source: restListWatchSource(client, secretsPath(namespace), { fieldSelector: `metadata.name=${name}` }),
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

  /** Not ours, or of a type we cannot write: an error that says what to do, never a takeover. */
  #refuseForeign(existing: V1Secret): void {
    if (existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY)
      throw new Error(
        `${this.description} exists and is not managed by kubeconfig-rotator (label ${MANAGED_BY_LABEL}=${MANAGED_BY}); delete it or choose another name`,
      );
    const wanted = secretType(this.#options.settings.format);
    const type = existing.type ?? 'Opaque';
    if (type !== wanted)
      throw new Error(
        `${this.description} has type ${type}, format ${this.#options.settings.format} needs ${wanted} (a Secret's type cannot change); delete it or choose another name`,
      );
  }

  async #get(): Promise<V1Secret | undefined> {
    try {
      const { client, namespace, name } = this.#options;
      return await client.request<V1Secret>('GET', `${secretsPath(namespace)}/${name}`);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(`reading ${this.description} failed`, { cause: error });
    }
  }
}

const secretsPath = (namespace: string) => `/api/v1/namespaces/${namespace}/secrets`;

function decode(secret: V1Secret): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]),
  );
}
