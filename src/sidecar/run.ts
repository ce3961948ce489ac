// `kubeconfig-rotator sidecar`: start-up, watches, reload and shutdown. Loads the config (exit 2 when bad),
// starts every target (built by build-target.ts, run by RunningTargets), watches the config and the bootstrap
// kubeconfigs, serves probes and metrics, and stops everything on SIGTERM.
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { clusterProfileOf } from '../core/config/cluster-profile.ts';
import type { SidecarConfig, TargetConfig } from '../core/config/sidecar.ts';
import { ConfigError } from '../core/config/validate.ts';
import { systemClock } from '../io/clock.ts';
import { startProbeServer, type ProbeServer } from '../io/http/server.ts';
import { describeError } from '../io/kube/errors.ts';
import { KubeConfigError, loadClientConfig } from '../io/kube/load-client-config.ts';
import { kubeEventRecorder, noEvents, restEventsApi, type EventRecorder } from '../io/kube/events.ts';
import { createKubeClient, type KubeClient } from '../io/kube/rest.ts';
import { untilAborted } from '../io/lifecycle.ts';
import { createLogger, type Logger } from '../io/log.ts';
import { watchDebounced, type DebouncedWatch } from '../io/watch.ts';
import {
  bootstrapNeeds,
  BootstrapKubeconfigError,
  readBootstrapKubeconfig,
  type BootstrapCredential,
} from './bootstrap-credential.ts';
import { buildRotator, buildTarget, type TargetContext } from './build-target.ts';
import { loadSidecarConfig, podIdentity, type LoadedConfig } from './config.ts';
import { sidecarMetrics, type SidecarMetrics } from './observer.ts';
import { configChange, RunningTargets } from './running-targets.ts';
import { targetVersionProblems } from './versions.ts';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_CONFIG = 2;

const WATCH_DEBOUNCE_MS = 300;

/** Uniform in [0, 1) from the CSPRNG (jitter must not be predictable across a fleet started together). */
const random = () => randomBytes(6).readUIntBE(0, 6) / 2 ** 48;

export interface SidecarOptions {
  readonly configPath: string;
  readonly once: boolean;
  readonly signal: AbortSignal;
  readonly stderr: NodeJS.WritableStream;
  readonly env: NodeJS.ProcessEnv;
}

export async function runSidecar(options: SidecarOptions): Promise<number> {
  let loaded: LoadedConfig;
  try {
    loaded = loadSidecarConfig(options.configPath, podIdentity(options.env));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    options.stderr.write(`kubeconfig-rotator sidecar: invalid configuration\n${error.message}\n`);
    return EXIT_CONFIG;
  }
  const { config } = loaded;
  const logger = createLogger({ name: 'kubeconfig-rotator-sidecar', level: config.logLevel });
  let source: KubeClient | undefined;
  const tooOld = await targetVersionProblems(config.targets, loaded.bootstraps);
  if (tooOld.length > 0) {
    options.stderr.write(
      `kubeconfig-rotator sidecar: a target's Kubernetes is too old for its configuration\n${tooOld.join('')}`,
    );
    return EXIT_CONFIG;
  }
  const needsSource = config.targets.some(
    (target) =>
      target.sinks.secret !== undefined ||
      target.restart.length > 0 ||
      target.credential === 'federated' ||
      (target.credential === 'certificate' && target.bootstrap?.with === 'federated') ||
      clusterProfileOf(config.clusterProfiles, target) !== undefined,
  );
  try {
    // One client for the source cluster, shared by every target's Secret sink, restarts, federated tokens and events.
    source =
      needsSource || config.sourceKubeconfig !== undefined || options.env.KUBERNETES_SERVICE_HOST !== undefined
        ? createKubeClient(loadClientConfig(config.sourceKubeconfig, { env: options.env }))
        : undefined;
  } catch (error) {
    if (!(error instanceof KubeConfigError)) throw error;
    const why = needsSource
      ? ' (needed by the Secret sinks, the restart action, federated targets, federated bootstrap and ClusterProfiles)'
      : '';
    options.stderr.write(
      `kubeconfig-rotator sidecar: invalid configuration\n  sourceKubeconfig: ${error.message}${why}\n`,
    );
    return EXIT_CONFIG;
  }
  try {
    return await new Sidecar(loaded, logger, source, options).run();
  } finally {
    await source?.close();
  }
}

/** Events on the sidecar's own Pod, when it knows its Pod (downward API) and has the source cluster's API. */
function podEvents(source: KubeClient | undefined, env: NodeJS.ProcessEnv, logger: Logger): EventRecorder {
  const { POD_NAME: podName, POD_NAMESPACE: podNamespace, POD_UID: podUid } = env;
  if (source === undefined || podName === undefined || podNamespace === undefined) return noEvents;
  return kubeEventRecorder({
    api: restEventsApi(source),
    component: 'kubeconfig-rotator-sidecar',
    instance: podName,
    involved: {
      apiVersion: 'v1',
      kind: 'Pod',
      name: podName,
      namespace: podNamespace,
      ...(podUid === undefined ? {} : { uid: podUid }),
    },
    logger,
  });
}

class Sidecar {
  readonly #options: SidecarOptions;
  readonly #logger: Logger;
  readonly #registry = new Registry();
  readonly #metrics: SidecarMetrics;
  readonly #events: EventRecorder;
  readonly #context: TargetContext;
  readonly #targets: RunningTargets;
  readonly #bootstraps: Map<string, BootstrapCredential | undefined>;
  #loaded: LoadedConfig;
  #configWatch: DebouncedWatch | undefined;
  /** The problems of the last rejected config, so the same bad file is reported once, not at every re-read. */
  #lastRejected: string | undefined;
  #crashed = false;
  #bootstrapWatch: DebouncedWatch | undefined;

  constructor(loaded: LoadedConfig, logger: Logger, source: KubeClient | undefined, options: SidecarOptions) {
    this.#loaded = loaded;
    this.#bootstraps = new Map(loaded.bootstraps);
    this.#logger = logger;
    this.#options = options;
    this.#metrics = sidecarMetrics(this.#registry);
    this.#events = podEvents(source, options.env, logger);
    this.#context = {
      source,
      stateDir: loaded.config.stateDir,
      clusterProfiles: loaded.config.clusterProfiles,
      once: options.once,
      bootstrap: (target) => this.#bootstraps.get(target),
      // The signer CAs of the last config applied: a reload re-reads them.
      signerCA: (target) => this.#loaded.signerCAs.get(target),
      clock: systemClock,
      random,
      logger,
      metrics: this.#metrics,
      events: this.#events,
    };
    this.#targets = new RunningTargets({
      create: (config) => buildTarget(config, this.#context),
      signal: options.signal,
      logger,
      crashed: () => {
        this.#crashed = true;
      },
    });
    // Event-loop lag sampled every 100 ms, not the default 10 ms: an idle sidecar should cost nothing.
    collectDefaultMetrics({
      register: this.#registry,
      prefix: 'kubeconfig_rotator_process_',
      eventLoopMonitoringPrecision: 100,
    });
  }

  get #config(): SidecarConfig {
    return this.#loaded.config;
  }

  async run(): Promise<number> {
    const { signal, once } = this.#options;
    this.#logger.info({ targets: this.#config.targets.map((target) => target.name), once }, 'starting');
    let server: ProbeServer | undefined;
    if (!once) {
      server = await startProbeServer({
        host: this.#config.listen.host,
        port: this.#config.listen.port,
        registry: this.#registry,
        readiness: () => this.#targets.readiness(),
        alive: () => !this.#crashed,
      });
      this.#logger.info(
        { address: `${server.address.address}:${String(server.address.port)}` },
        'serving /healthz, /readyz and /metrics',
      );
    }
    let reread: NodeJS.Timeout | undefined;
    try {
      if (once) return await this.#runOnce();
      for (const target of this.#config.targets) await this.#targets.start(target);
      // Only now: a reload during the starts above could start a target a second time.
      this.#watchInputs();
      reread = setInterval(() => {
        this.#reread();
      }, this.#config.rereadIntervalSeconds * 1000);
      await untilAborted(signal);
      this.#logger.info('shutting down');
      return EXIT_OK;
    } finally {
      clearInterval(reread);
      // Inputs first: a reload that ran later could restart a target while the targets are stopped.
      await this.#configWatch?.close();
      await this.#bootstrapWatch?.close();
      await this.#targets.stopAll();
      await server?.close();
      await this.#events.flush();
      this.#logger.info('stopped');
    }
  }

  async #runOnce(): Promise<number> {
    const results = await Promise.allSettled(
      this.#config.targets.map(async (config) => {
        const rotator = buildRotator(config, this.#context);
        await rotator.once(this.#options.signal);
        return rotator.status();
      }),
    );
    let failed = false;
    for (const result of results) {
      if (result.status === 'fulfilled')
        this.#logger.info({ target: result.value.name, detail: result.value.detail }, 'published');
      else {
        failed = true;
        this.#logger.error({ error: describeError(result.reason) }, 'no valid certificate');
      }
    }
    return failed ? EXIT_FAILURE : EXIT_OK;
  }

  /** Re-reads a bootstrap kubeconfig; a broken new file keeps the last good one. Returns whether it changed. */
  #refreshBootstrap(config: TargetConfig): boolean {
    const before = this.#bootstraps.get(config.name);
    try {
      const after = readBootstrapKubeconfig(config.bootstrapKubeconfig, bootstrapNeeds(config));
      this.#bootstraps.set(config.name, after);
      return before?.fingerprint !== after?.fingerprint;
    } catch (error) {
      if (!(error instanceof BootstrapKubeconfigError)) throw error;
      this.#logger.error(
        { target: config.name, error: error.message },
        'bootstrap kubeconfig is unusable; keeping the last good one',
      );
      return false;
    }
  }

  /** Re-reads every configured target's bootstrap kubeconfig; a running target whose one changed retries now. */
  #refreshBootstraps(): void {
    // Configured, not running, targets: one restarting after a config change must not miss a change.
    for (const config of this.#config.targets) {
      if (!this.#refreshBootstrap(config)) continue;
      this.#logger.info({ target: config.name }, 'bootstrap kubeconfig changed');
      this.#targets.rotator(config.name)?.bootstrapChanged();
    }
  }

  #reread(): void {
    this.#reloadConfig();
    this.#refreshBootstraps();
    for (const rotator of this.#targets.rotators()) rotator.checkOutputs();
  }

  #watchInputs(): void {
    const options = { depth: 0, debounceMs: WATCH_DEBOUNCE_MS };
    this.#configWatch = watchDebounced(dirname(this.#options.configPath), options, () => {
      this.#reloadConfig();
    });
    const bootstrapDirectories = [
      ...new Set(this.#config.targets.map((target) => dirname(target.bootstrapKubeconfig))),
    ];
    this.#bootstrapWatch = watchDebounced(bootstrapDirectories, options, () => {
      this.#refreshBootstraps();
    });
  }

  /** Applies a changed config: targets added, removed or changed are started, stopped or restarted. */
  #reloadConfig(): void {
    let next: LoadedConfig;
    try {
      next = loadSidecarConfig(this.#options.configPath, podIdentity(this.#options.env));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      if (JSON.stringify(error.problems) !== this.#lastRejected) {
        this.#lastRejected = JSON.stringify(error.problems);
        this.#metrics.configReloads.inc({ result: 'rejected' });
        this.#logger.error(
          { problems: error.problems.map((problem) => `${problem.path}: ${problem.message}`) },
          'new configuration is invalid; keeping the current one',
        );
      }
      return;
    }
    this.#lastRejected = undefined;
    const { targets: changed, global: globalChange } = configChange(this.#config, next.config);
    if (changed.length === 0 && !globalChange) return;
    if (globalChange) {
      this.#logger.level = next.config.logLevel;
      this.#logger.warn(
        'changes to listen, stateDir, sourceKubeconfig, rereadIntervalSeconds or clusterProfiles take effect at the next restart',
      );
    }
    this.#loaded = {
      ...next,
      config: { ...this.#config, logLevel: next.config.logLevel, targets: next.config.targets },
    };
    // Read just now to validate the config: the restarted targets start with these.
    for (const name of changed) if (next.bootstraps.has(name)) this.#bootstraps.set(name, next.bootstraps.get(name));
    this.#metrics.configReloads.inc({ result: 'applied' });
    this.#logger.info({ changed }, 'configuration reloaded');
    this.#targets.apply(changed, next.config.targets);
  }
}
