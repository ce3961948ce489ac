// A target's ClusterProfile in the source cluster (docs/cluster-profile.md): created when missing, its status kept
// to what the sidecar last saw of the target (/readyz, /version, the credential it publishes). Every write is a PUT
// carrying the resourceVersion it was computed from (a 409 is retried from a fresh read, with the backoff), the
// status goes through the status subresource and only when it changed, and a ClusterProfile whose clusterManager is
// another's is never written: the target is reported not ready until that is resolved. The pure rules are
// core/cluster-profile/profile.ts.
import { backoffDelay } from '../core/backoff.ts';
import {
  clusterProfilePath,
  clusterProfilesPath,
  desiredStatus,
  newClusterProfile,
  notOurs,
  specUpdate,
  statusDiffers,
  type Access,
  type ClusterProfile,
  type Health,
  type Observation,
} from '../core/cluster-profile/profile.ts';
import type { ClusterProfileRef } from '../core/config/cluster-profile.ts';
import type { ProviderCluster } from '../core/exec-credential/extension.ts';
import type { Clock } from '../io/clock.ts';
import { describeError, httpStatus, isConflict, isNotFound } from '../io/kube/errors.ts';
import type { EventRecorder } from '../io/kube/events.ts';
import type { KubeClient } from '../io/kube/rest.ts';
import { serverVersion } from '../io/kube/version.ts';
import type { Logger } from '../io/log.ts';
import type { TargetObserver, TargetRotator, TargetStatus } from './rotator.ts';
import type { ManagedTarget } from './running-targets.ts';

/** /readyz must answer within this (the API server's own checks answer in milliseconds). */
const READYZ_TIMEOUT_MS = 10_000;
/** Writes that met a newer resourceVersion: tried again this many times in one sync, after the backoff. */
const CONFLICT_ATTEMPTS = 5;
const CONFLICT_BACKOFF = { initialMs: 100, maxMs: 2_000 };
/** A failed sync (the source's API down, no RBAC) is retried after this backoff, at most the health interval. */
const FAILURE_BACKOFF_INITIAL_MS = 1_000;

export interface ClusterProfileKeeperOptions {
  readonly source: KubeClient;
  readonly ref: ClusterProfileRef;
  /** The target's rotator's status: whether its credential is published. */
  readonly targetStatus: () => TargetStatus;
  /** The target's server and CA as the sinks publish them; undefined until known. */
  readonly cluster: () => ProviderCluster | undefined;
  /** A client for the target (its current credential, else the bootstrap one), closed after each look. */
  readonly targetClient: () => KubeClient | undefined;
  readonly access: Access;
  readonly intervalMs: number;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly events: EventRecorder;
}

export class ClusterProfileKeeper {
  readonly #options: ClusterProfileKeeperOptions;
  #health: Health | undefined;
  #version: string | undefined;
  /** Why the ClusterProfile is not ours; undefined while it is (or not read yet). */
  #refusal: string | undefined;
  #failures = 0;
  #lastFailure: string | undefined;
  #wake = new AbortController();

  constructor(options: ClusterProfileKeeperOptions) {
    this.#options = options;
  }

  get #description(): string {
    return `ClusterProfile ${this.#options.ref.namespace}/${this.#options.ref.name}`;
  }

  /** Why this target's ClusterProfile cannot be kept (another manager's), for readiness; undefined when fine. */
  get refusal(): string | undefined {
    return this.#refusal;
  }

  /** Something the status shows changed (the credential's readiness): write it now, not at the next look. */
  poke(): void {
    this.#wake.abort();
  }

  /** Looks at the target every interval and writes the ClusterProfile, until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { clock, intervalMs } = this.#options;
    let nextLook = clock.monotonic();
    while (!signal.aborted) {
      // Before the sync: a poke during it wakes the sleep below.
      const wake = new AbortController();
      this.#wake = wake;
      if (clock.monotonic() >= nextLook) {
        await this.#look(signal);
        nextLook = clock.monotonic() + intervalMs;
      }
      const synced = await this.#sync(signal);
      const retryIn = synced
        ? Infinity
        : backoffDelay(this.#failures, { initialMs: FAILURE_BACKOFF_INITIAL_MS, maxMs: intervalMs }) *
          (0.5 + this.#options.random() / 2);
      const wait = Math.min(nextLook - clock.monotonic(), retryIn);
      await clock.sleep(Math.max(0, wait), AbortSignal.any([signal, wake.signal]));
    }
  }

  /** /readyz and /version of the target, each bounded; a shutdown keeps what was last seen. */
  async #look(signal: AbortSignal): Promise<void> {
    const client = this.#options.targetClient();
    if (client === undefined) {
      this.#health = { state: 'unknown', detail: 'no server and CA known yet (the bootstrap kubeconfig is missing)' };
      return;
    }
    try {
      const health = await readyz(client, signal);
      if (signal.aborted) return;
      this.#health = health;
      // Only a target that answered can say its version (serverVersion has its own bound).
      if (health.state !== 'unreachable')
        this.#version = (await serverVersion(client, signal))?.gitVersion ?? this.#version;
    } finally {
      await client.close();
    }
  }

  #observation(): Observation {
    const status = this.#options.targetStatus();
    const cluster = this.#options.cluster();
    return {
      server: cluster?.server,
      health: this.#health,
      version: this.#version,
      credential: { published: status.ready, issued: status.current !== undefined, detail: status.detail },
      cluster,
      access: this.#options.access,
    };
  }

  /** One pass: read (or create), refuse if not ours, fix the spec, write the status if it changed. */
  async #sync(signal: AbortSignal): Promise<boolean> {
    const { clock, logger, events } = this.#options;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#syncOnce(signal);
        if (this.#lastFailure !== undefined) logger.info(`${this.#description} is written again`);
        this.#failures = 0;
        this.#lastFailure = undefined;
        return true;
      } catch (error) {
        if (signal.aborted) return true;
        if (isConflict(error) && attempt < CONFLICT_ATTEMPTS) {
          await clock.sleep(backoffDelay(attempt, CONFLICT_BACKOFF) * (0.5 + this.#options.random() / 2), signal);
          continue;
        }
        this.#failures++;
        const message = `${this.#description} could not be written: ${describeError(error)}`;
        // Once per distinct failure: the retries of an outage must not flood the log and the Events.
        if (message !== this.#lastFailure) {
          logger.warn({ error: describeError(error) }, `${this.#description} could not be written`);
          events.warning('ClusterProfileNotWritten', message);
        }
        this.#lastFailure = message;
        return false;
      }
    }
  }

  async #syncOnce(signal: AbortSignal): Promise<void> {
    const { source, ref, clock, logger, events } = this.#options;
    const path = clusterProfilePath(ref);
    let profile = await this.#readOrCreate(signal);
    const refusal = notOurs(profile);
    if (refusal !== undefined) {
      if (refusal !== this.#refusal) {
        logger.error({ clusterProfile: `${ref.namespace}/${ref.name}` }, refusal);
        events.warning('ClusterProfileNotOurs', refusal);
      }
      this.#refusal = refusal;
      return;
    }
    if (this.#refusal !== undefined) logger.info(`${this.#description} is ours again`);
    this.#refusal = undefined;
    const spec = specUpdate(profile, ref);
    if (spec !== undefined) profile = await source.request<ClusterProfile>('PUT', path, { body: spec, signal });
    const status = desiredStatus(profile, this.#observation(), clock.now());
    if (!statusDiffers(profile.status, status)) return;
    const written = await source.request<ClusterProfile>('PUT', `${path}/status`, {
      body: { ...profile, status },
      signal,
    });
    reportConditions(profile, written, logger);
  }

  async #readOrCreate(signal: AbortSignal): Promise<ClusterProfile> {
    const { source, ref, logger, events } = this.#options;
    try {
      return await source.request<ClusterProfile>('GET', clusterProfilePath(ref), { signal });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    try {
      const created = await source.request<ClusterProfile>('POST', clusterProfilesPath(ref.namespace), {
        body: newClusterProfile(ref),
        signal,
      });
      logger.info(`${this.#description} created`);
      events.normal('ClusterProfileCreated', `${this.#description} created`);
      return created;
    } catch (error) {
      // Created meanwhile (by us before a restart, or by someone else): read it, and check whose it is.
      if (!isConflict(error)) throw error;
      return source.request<ClusterProfile>('GET', clusterProfilePath(ref), { signal });
    }
  }
}

/** The target's /readyz: 200 is ready, another answer not ready (401/403 say nothing), no answer unreachable. */
async function readyz(client: KubeClient, signal: AbortSignal): Promise<Health> {
  try {
    await client.request<string>('GET', '/readyz', {
      text: true,
      signal: AbortSignal.any([signal, AbortSignal.timeout(READYZ_TIMEOUT_MS)]),
    });
    return { state: 'ready' };
  } catch (error) {
    const code = httpStatus(error);
    if (code === 401 || code === 403)
      return { state: 'unknown', detail: `HTTP ${String(code)}: the credential used may not read /readyz` };
    if (code !== undefined) return { state: 'not-ready', code };
    return { state: 'unreachable', detail: describeError(error) };
  }
}

/** A condition whose status changed is logged (each write is not: most change only a message). */
function reportConditions(before: ClusterProfile, after: ClusterProfile, logger: Logger): void {
  for (const condition of after.status?.conditions ?? []) {
    const previous = before.status?.conditions?.find((each) => each.type === condition.type);
    if (previous?.status === condition.status) continue;
    logger.info(
      { condition: condition.type, status: condition.status, reason: condition.reason },
      `ClusterProfile ${after.metadata.namespace}/${after.metadata.name}: ${condition.type} ${condition.status}: ${condition.message}`,
    );
  }
}

/** The target's observer, also poking the keeper when the credential's readiness changes. */
export function pokingObserver(observer: TargetObserver, poke: () => void): TargetObserver {
  return {
    ...observer,
    readinessChanged(ready, detail) {
      observer.readinessChanged(ready, detail);
      poke();
    },
  };
}

/** A target with a ClusterProfile: the rotator and the keeper run and stop together; a refusal is not ready. */
export class ProfiledTarget implements ManagedTarget {
  readonly #rotator: TargetRotator;
  readonly #keeper: ClusterProfileKeeper;

  constructor(rotator: TargetRotator, keeper: ClusterProfileKeeper) {
    this.#rotator = rotator;
    this.#keeper = keeper;
  }

  get name(): string {
    return this.#rotator.name;
  }

  sinks(): ReturnType<TargetRotator['sinks']> {
    return this.#rotator.sinks();
  }

  checkOutputs(): void {
    this.#rotator.checkOutputs();
  }

  bootstrapChanged(): void {
    this.#rotator.bootstrapChanged();
  }

  status(): TargetStatus {
    const status = this.#rotator.status();
    const refusal = this.#keeper.refusal;
    return refusal === undefined ? status : { ...status, ready: false, detail: `${status.detail}; ${refusal}` };
  }

  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#rotator.run(signal), this.#keeper.run(signal)]);
  }
}
