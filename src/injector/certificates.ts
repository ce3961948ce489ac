// The webhook's serving certificate: either self-managed (a CA kept in a Secret that every replica shares,
// a serving certificate per replica renewed at two thirds of its life, the CA replaced at two thirds of its
// own with old and new both trusted meanwhile, and the MutatingWebhookConfiguration's caBundle kept current)
// or read from files (cert-manager), re-read when they change.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { V1MutatingWebhookConfiguration, V1Secret } from '@kubernetes/client-node';
import type { InjectorConfig } from '../core/config/injector.ts';
import { createCertificateAuthority, issueCertificate, type PemPair } from '../core/pki/issue.ts';
import { systemClock, type Clock } from '../io/clock.ts';
import { describeError, isConflict, isNotFound } from '../io/kube/errors.ts';
import type { KubeClient } from '../io/kube/rest.ts';
import type { Logger } from '../io/log.ts';
import { watchDebounced, type DebouncedWatch } from '../io/watch.ts';

export interface ServingCertificates {
  /** The current pair; `onChange` is called with each new one. */
  start(onChange: (pair: PemPair) => void): Promise<PemPair>;
  stop(): Promise<void>;
}

type SelfManaged = Extract<InjectorConfig['tls'], { mode: 'self-managed' }>;
type Files = Extract<InjectorConfig['tls'], { mode: 'files' }>;

const CA_CERT = 'ca.crt';
const CA_KEY = 'ca.key';
const PREVIOUS_CA_CERT = 'previous-ca.crt';
const RETRY_MS = 5_000;

const notAfter = (pem: string) => new X509Certificate(pem).validToDate.getTime();
const notBefore = (pem: string) => new X509Certificate(pem).validFromDate.getTime();
/** Two thirds of the way through a certificate's life. */
const renewalTime = (pem: string) => notBefore(pem) + ((notAfter(pem) - notBefore(pem)) * 2) / 3;

export function servingCertificates(
  tls: InjectorConfig['tls'],
  client: KubeClient | undefined,
  logger: Logger,
  clock: Pick<Clock, 'now' | 'sleep'> = systemClock,
): ServingCertificates {
  if (tls.mode === 'files') return fileCertificates(tls, logger);
  if (client === undefined) throw new Error('self-managed TLS needs the Kubernetes API');
  return selfManagedCertificates(tls, client, logger, clock);
}

interface CaState {
  readonly ca: PemPair;
  /** PEM bundle to trust: the CA and, during a rotation, the one it replaced. */
  readonly bundle: string;
}

function selfManagedCertificates(
  tls: SelfManaged,
  client: KubeClient,
  logger: Logger,
  clock: Pick<Clock, 'now' | 'sleep'>,
): ServingCertificates {
  const { namespace, name } = tls.secret;
  const secrets = `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
  const secretPath = `${secrets}/${encodeURIComponent(name)}`;
  const webhookConfigurationPath = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${encodeURIComponent(tls.webhookConfiguration)}`;
  const stop = new AbortController();
  let loop: Promise<void> = Promise.resolve();

  const decode = (secret: V1Secret, key: string) =>
    secret.data?.[key] === undefined ? undefined : Buffer.from(secret.data[key], 'base64').toString('utf8');
  const lifetime = (seconds: number) => ({
    notBefore: new Date(clock.now() - 60_000),
    notAfter: new Date(clock.now() + seconds * 1000),
  });

  /** The CA from the Secret, creating or replacing it when missing or due; replicas race safely. */
  async function currentCa(): Promise<CaState> {
    for (;;) {
      let secret: V1Secret | undefined;
      try {
        secret = await client.request<V1Secret>('GET', secretPath);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      const cert = secret === undefined ? undefined : decode(secret, CA_CERT);
      const key = secret === undefined ? undefined : decode(secret, CA_KEY);
      if (secret !== undefined && cert !== undefined && key !== undefined && clock.now() < renewalTime(cert)) {
        const previous = decode(secret, PREVIOUS_CA_CERT);
        const stillTrusted = previous !== undefined && clock.now() < notAfter(previous) ? previous : '';
        return { ca: { cert, key }, bundle: cert + stillTrusted };
      }
      const fresh = createCertificateAuthority('kubeconfig-rotator-injector-ca', lifetime(tls.caLifetimeSeconds));
      const data: Record<string, string> = {
        [CA_CERT]: fresh.cert,
        [CA_KEY]: fresh.key,
        ...(cert === undefined ? {} : { [PREVIOUS_CA_CERT]: cert }),
      };
      const body: V1Secret = {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'kubeconfig-rotator' },
          ...(secret?.metadata?.resourceVersion === undefined
            ? {}
            : { resourceVersion: secret.metadata.resourceVersion }),
        },
        type: 'Opaque',
        data: Object.fromEntries(
          Object.entries(data).map(([field, value]) => [field, Buffer.from(value).toString('base64')]),
        ),
      };
      try {
        // Created, or replaced at the resourceVersion read: of two replicas racing, one gets a conflict.
        if (secret === undefined) await client.request('POST', secrets, { body });
        else await client.request('PUT', secretPath, { body });
        logger.info(
          {
            secret: `${namespace}/${name}`,
            notAfter: new Date(notAfter(fresh.cert)).toISOString(),
            replaced: cert !== undefined,
          },
          'webhook CA created',
        );
      } catch (error) {
        // Another replica won the race: use what it wrote.
        if (!isConflict(error)) throw error;
      }
    }
  }

  async function publishBundle(bundle: string): Promise<void> {
    const encoded = Buffer.from(bundle).toString('base64');
    for (let attempt = 0; attempt < 5; attempt++) {
      // Replaced as read (every field kept as the API sent it), at its resourceVersion.
      const configuration = await client.request<V1MutatingWebhookConfiguration>('GET', webhookConfigurationPath);
      const webhooks = configuration.webhooks ?? [];
      if (webhooks.every((webhook) => webhook.clientConfig.caBundle === encoded)) return;
      for (const webhook of webhooks) webhook.clientConfig.caBundle = encoded;
      try {
        await client.request('PUT', webhookConfigurationPath, { body: configuration });
        logger.info({ webhookConfiguration: tls.webhookConfiguration }, 'caBundle updated');
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
  }

  async function issue(): Promise<{ pair: PemPair; renewAt: number }> {
    const state = await currentCa();
    await publishBundle(state.bundle);
    const pair = issueCertificate(
      state.ca,
      {
        commonName: tls.dnsNames[0] ?? 'kubeconfig-rotator-injector',
        usage: 'server',
        dnsNames: tls.dnsNames,
        ipAddresses: tls.ipAddresses,
      },
      lifetime(tls.servingLifetimeSeconds),
    );
    // Renew at two thirds of the serving certificate's life, or when the CA is due, whichever comes first.
    const renewAt = Math.min(renewalTime(pair.cert), renewalTime(state.ca.cert));
    logger.info(
      {
        serial: new X509Certificate(pair.cert).serialNumber,
        notAfter: new Date(notAfter(pair.cert)).toISOString(),
        renewAt: new Date(renewAt).toISOString(),
      },
      'serving certificate issued',
    );
    return { pair, renewAt };
  }

  return {
    async start(onChange) {
      const first = await issue();
      loop = (async () => {
        let renewAt = first.renewAt;
        const stopped = () => stop.signal.aborted;
        while (!stopped()) {
          await clock.sleep(Math.max(0, renewAt - clock.now()), stop.signal);
          if (stopped()) break;
          try {
            const next = await issue();
            renewAt = next.renewAt;
            onChange(next.pair);
          } catch (error) {
            logger.error({ error: describeError(error) }, 'could not renew the serving certificate; retrying');
            renewAt = clock.now() + RETRY_MS;
          }
        }
      })();
      return first.pair;
    },
    async stop() {
      stop.abort();
      await loop;
    },
  };
}

function fileCertificates(tls: Files, logger: Logger): ServingCertificates {
  let watch: DebouncedWatch | undefined;
  const read = async (): Promise<PemPair> => ({
    cert: await readFile(tls.certFile, 'utf8'),
    key: await readFile(tls.keyFile, 'utf8'),
  });
  return {
    async start(onChange) {
      const first = await read();
      let last = first.cert;
      watch = watchDebounced(
        [...new Set([dirname(tls.certFile), dirname(tls.keyFile)])],
        { depth: 0, debounceMs: 300 },
        () => {
          read().then(
            (pair) => {
              if (pair.cert === last) return;
              last = pair.cert;
              logger.info(
                { serial: new X509Certificate(pair.cert).serialNumber },
                'serving certificate reloaded from files',
              );
              onChange(pair);
            },
            (error: unknown) => {
              logger.error(
                { error: describeError(error) },
                'could not read the serving certificate files; keeping the current one',
              );
            },
          );
        },
      );
      return first;
    },
    async stop() {
      await watch?.close();
    },
  };
}
