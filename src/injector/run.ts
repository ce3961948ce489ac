// `kubeconfig-rotator injector`: a mutating admission webhook that adds the sidecar to annotated Pods.
// HTTPS on one port (the apiserver calls it), /healthz, /readyz and /metrics on another.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { injectorConfigSchema, type InjectorConfig } from '../core/config/injector.ts';
import { ConfigError } from '../core/config/validate.ts';
import { readConfigFile } from '../io/config-file.ts';
import { startProbeServer, type ProbeServer } from '../io/http/server.ts';
import { KubeConfigError, loadClientConfig } from '../io/kube/load-client-config.ts';
import { createKubeClient, type KubeClient } from '../io/kube/rest.ts';
import { untilAborted } from '../io/lifecycle.ts';
import { createLogger } from '../io/log.ts';
import { servingCertificates } from './certificates.ts';
import { handleMutate } from './webhook.ts';

export interface InjectorOptions {
  readonly configPath: string;
  readonly kubeconfig: string | undefined;
  readonly signal: AbortSignal;
  readonly stderr: NodeJS.WritableStream;
  /** Where the in-cluster ServiceAccount and $KUBECONFIG are read from (the process's own unless given). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export async function runInjector(options: InjectorOptions): Promise<number> {
  const env = options.env ?? process.env;
  let config: InjectorConfig;
  let client: KubeClient | undefined;
  try {
    config = readConfigFile(options.configPath, injectorConfigSchema).value;
    // Only self-managed TLS talks to the API: its CA Secret and the webhook configuration's caBundle.
    client =
      config.tls.mode === 'self-managed'
        ? createKubeClient(loadClientConfig(options.kubeconfig, { env }), {
            env,
            userAgent: 'kubeconfig-rotator-injector',
          })
        : undefined;
  } catch (error) {
    if (!(error instanceof ConfigError) && !(error instanceof KubeConfigError)) throw error;
    options.stderr.write(`kubeconfig-rotator injector: invalid configuration\n${error.message}\n`);
    return 2;
  }
  const logger = createLogger({ name: 'kubeconfig-rotator-injector', level: config.logLevel });
  const registry = new Registry();
  collectDefaultMetrics({
    register: registry,
    prefix: 'kubeconfig_rotator_injector_process_',
    eventLoopMonitoringPrecision: 100,
  });
  const requests = new Counter({
    name: 'kubeconfig_rotator_injector_requests_total',
    help: 'Admission requests by outcome (injected, skipped, rejected, dry-run, error).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const certificateRenewals = new Counter({
    name: 'kubeconfig_rotator_injector_certificate_renewals_total',
    help: 'Serving certificates swapped in without a restart.',
    registers: [registry],
  });

  const certificates = servingCertificates(config.tls, client, logger);
  let ready = false;
  let server: Server | undefined;
  let probes: ProbeServer | undefined;
  const pair = await certificates
    .start((next) => {
      server?.setSecureContext({ cert: next.cert, key: next.key });
      certificateRenewals.inc();
    })
    .catch(async (error: unknown) => {
      await client?.close();
      throw error;
    });
  // From here the renewal loop or file watcher runs: every exit, a failed start included, must stop it.
  try {
    const webhook = createServer({ cert: pair.cert, key: pair.key }, (request, response) => {
      handleMutate(
        request,
        response,
        () => config,
        (result) => {
          requests.inc({ outcome: result.outcome });
          const level = result.outcome === 'rejected' || result.outcome === 'error' ? 'warn' : 'info';
          logger[level]({ outcome: result.outcome }, result.detail);
        },
      );
    });
    server = webhook;
    webhook.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      webhook.once('error', reject);
      webhook.listen(config.listen.port, config.listen.host, () => {
        webhook.off('error', reject);
        resolve();
      });
    });
    const webhookAddress = webhook.address() as AddressInfo;
    ready = true;
    probes = await startProbeServer({
      host: config.probes.host,
      port: config.probes.port,
      registry,
      readiness: () => ({ ready, details: [`webhook on ${config.listen.host}:${String(webhookAddress.port)}`] }),
    });
    logger.info(
      {
        webhook: `${webhookAddress.address}:${String(webhookAddress.port)}`,
        address: `${probes.address.address}:${String(probes.address.port)}`,
        targets: config.targets.map((target) => target.name),
      },
      'injector started',
    );
    await untilAborted(options.signal);
    logger.info('shutting down');
    return 0;
  } finally {
    ready = false;
    await certificates.stop();
    await client?.close();
    if (server !== undefined) await closeServer(server);
    await probes?.close();
    logger.info('stopped');
  }
}

/** Stops accepting and ends open connections (the apiserver keeps them alive); resolves once closed. */
function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    // Called with ERR_SERVER_NOT_RUNNING when listen failed: there is nothing more to close then.
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}
