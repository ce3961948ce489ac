// `kubeconfig-rotator approver`: wiring. Checks the options and the policy (exit 2 listing every problem),
// starts the CSR informer, campaigns for the Lease and decides only while leading, hot-reloads the policy,
// serves /healthz /readyz /metrics, and on SIGTERM releases the Lease and stops everything within seconds.
import type { V1CertificateSigningRequest } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { ConfigError } from '../core/config/validate.ts';
import { csrRecord, isUnread, type CsrRecord } from '../core/policy/csr-record.ts';
import { systemClock } from '../io/clock.ts';
import { startProbeServer } from '../io/http/server.ts';
import type { ClientConfig } from '../core/kubeconfig/client-config.ts';
import { KubeConfigError, loadClientConfig } from '../io/kube/load-client-config.ts';
import { kubeEventRecorder, restEventsApi } from '../io/kube/events.ts';
import { createInformer } from '../io/kube/informer.ts';
import { createLeaderElector, kubeLeaseStore } from '../io/kube/leader-election.ts';
import { tokenBucket } from '../io/kube/rate-limit.ts';
import { createKubeClient, type KubeClient } from '../io/kube/rest.ts';
import { untilAborted } from '../io/lifecycle.ts';
import { createLogger, type Logger } from '../io/log.ts';
import { ApproverController } from './controller.ts';
import { csrSource, kubeDecisionWriter, kubeReviewer } from './kube.ts';
import { approverMetrics } from './metrics.ts';
import { parseApproverOptions, type ApproverOptions } from './options.ts';
import { readPolicy, watchPolicyFile, type LoadedPolicy } from './policy-source.ts';
import { policyVersionProblems } from './versions.ts';

const EXIT_OK = 0;
const EXIT_CONFIG = 2;

const COMPONENT = 'kubeconfig-rotator-approver';
// At most this many Events wait for their rate limit (client-go's event queue is as long); more are dropped.
const MAX_WAITING_EVENTS = 1000;
// CSRs per list page: a CSR can hold a request of megabytes, and a page is held whole while it is read.
const CSR_PAGE_SIZE = 25;

export interface ApproverRunOptions {
  readonly values: Readonly<Record<string, unknown>>;
  readonly signal: AbortSignal;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

export async function runApprover(run: ApproverRunOptions): Promise<number> {
  const parsed = parseApproverOptions(run.values, run.env);
  if (!parsed.ok) {
    run.stderr.write(
      `kubeconfig-rotator approver: invalid options\n${parsed.problems.map((problem) => `  ${problem}\n`).join('')}`,
    );
    return EXIT_CONFIG;
  }
  const { options } = parsed;
  let initial: LoadedPolicy;
  let clientConfig: ClientConfig;
  try {
    initial = readPolicy(options.policyPath);
    clientConfig = loadClientConfig(options.kubeconfigPath, { env: run.env });
  } catch (error) {
    if (error instanceof ConfigError)
      run.stderr.write(`kubeconfig-rotator approver: invalid policy\n${error.message}\n`);
    else if (error instanceof KubeConfigError) run.stderr.write(`kubeconfig-rotator approver: ${error.message}\n`);
    else throw error;
    return EXIT_CONFIG;
  }
  const versionClient = createKubeClient(clientConfig, { env: run.env });
  const tooOld = await policyVersionProblems(versionClient, initial.file).finally(() => versionClient.close());
  if (tooOld.length > 0) {
    run.stderr.write(
      `kubeconfig-rotator approver: the cluster's Kubernetes is too old for the policy\n${tooOld.join('')}`,
    );
    return EXIT_CONFIG;
  }
  const logger = createLogger({ name: COMPONENT, level: options.logLevel });
  await serve(options, initial, clientConfig, run.env, logger, run.signal);
  return EXIT_OK;
}

async function serve(
  options: ApproverOptions,
  initial: LoadedPolicy,
  clientConfig: ClientConfig,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  const registry = new Registry();
  const metrics = approverMetrics(registry, {
    queueDepth: () => controller.queueDepth,
    cache: () => controller.cacheStats,
  });
  // Requests waiting for a token fail when this aborts: only once the Lease is released at shutdown.
  const limits = new AbortController();
  // As kube-controller-manager gives its controllers, its informers and its leader election a client each, every
  // kind of traffic has its own limiter: a burst of decisions never delays a Lease renewal or the watch, and
  // renewals never take a decision's tokens. Events, best effort, wait at most MAX_WAITING_EVENTS deep.
  const clients: KubeClient[] = [];
  const client = (maxWaiting?: number) => {
    const created = createKubeClient(clientConfig, {
      env,
      userAgent: COMPONENT,
      limiter: tokenBucket({
        qps: options.qps,
        burst: options.burst,
        signal: limits.signal,
        ...(maxWaiting === undefined
          ? {}
          : {
              maxWaiting,
              onRefused: () => {
                metrics.droppedEvents.inc();
              },
            }),
      }),
    });
    clients.push(created);
    return created;
  };
  const decisions = client();
  const events = kubeEventRecorder({
    api: restEventsApi(client(MAX_WAITING_EVENTS)),
    component: COMPONENT,
    instance: options.identity,
    logger,
  });
  const policy = watchPolicyFile({
    path: options.policyPath,
    initial,
    logger,
    onChange: (current) => {
      metrics.policyGeneration.set(current.generation);
      controller.policyChanged();
      // CSRs whose requests were not read may be ones the new policy applies to: read them now.
      informer.refresh(isUnread);
    },
    onRejected: () => {
      metrics.policyReloadErrors.inc();
    },
  });
  metrics.policyGeneration.set(policy.current.generation);
  const controller = new ApproverController({
    policy: () => policy.current,
    writer: kubeDecisionWriter(decisions),
    reviewer: kubeReviewer(decisions),
    events,
    metrics,
    logger,
    workers: options.workers,
    clock: systemClock,
  });
  const { signerName } = initial.file;
  const informer = createInformer<V1CertificateSigningRequest, CsrRecord>({
    source: csrSource(client(), signerName),
    describe: `CSRs of ${signerName}`,
    key: (csr) => csr.metadata?.name ?? '',
    version: (csr) => csr.metadata?.resourceVersion ?? '',
    transform: (csr) => csrRecord(csr, policy.current),
    pageSize: CSR_PAGE_SIZE,
    handlers: controller.handlers,
    logger,
    onRestart: (reason) => {
      metrics.informerRestarts.inc({ reason });
    },
  });
  controller.attach(informer);
  const elector = createLeaderElector({
    store: kubeLeaseStore(client(), options.leaseNamespace, options.leaseName),
    identity: options.identity,
    logger,
    onStartedLeading: () => {
      controller.lead();
    },
    onStoppedLeading: () => {
      controller.follow();
    },
  });
  // The policy watcher is already open: if the probe server cannot listen, close it so the process exits.
  const server = await startProbeServer({
    host: options.listen.host,
    port: options.listen.port,
    registry,
    readiness: () => ({
      ready: informer.synced,
      details: [
        `informer: ${informer.synced ? `synced, ${String(informer.size)} CSRs of ${signerName} cached` : 'not synced yet'}`,
        `leader: ${elector.isLeader ? 'this replica' : elector.observedLeader || 'none observed yet'}`,
        `policy: generation ${String(policy.current.generation)}`,
      ],
    }),
    alive: () => informer.alive,
  }).catch(async (error: unknown) => {
    await policy.close();
    throw error;
  });
  logger.info(
    {
      address: `${server.address.address}:${String(server.address.port)}`,
      signerName,
      lease: `${options.leaseNamespace}/${options.leaseName}`,
      identity: options.identity,
      workers: options.workers,
      qps: options.qps,
      burst: options.burst,
    },
    'approver started',
  );
  informer.start();
  elector.start();
  await untilAborted(signal);
  logger.info('shutting down');
  // Stop deciding and release the Lease first, so the other replica takes over at once.
  await elector.stop();
  await controller.drained();
  limits.abort();
  await Promise.all([informer.stop(), policy.close()]);
  await events.flush();
  await Promise.all(clients.map((created) => created.close()));
  await server.close();
  logger.info('stopped');
}
