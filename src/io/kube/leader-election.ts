// Leader election on a coordination.k8s.io Lease, with client-go's rules: a candidate takes the lease only when
// its holder has not renewed it for leaseDuration as measured on the candidate's own clock (from when it saw
// the record change, so clock skew between replicas does not matter); the leader renews every retryPeriod and
// steps down as soon as renewDeadline passes without a successful renewal, which is before anyone else may
// take over. Every write uses the Lease's resourceVersion, so two candidates never both win.
import type { V1Lease } from '@kubernetes/client-node';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { describeError, isConflict, isNotFound } from './errors.ts';
import type { KubeClient } from './rest.ts';

export interface LeaseRecord {
  /** '' when released. */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  /** RFC 3339 with microseconds. */
  readonly acquireTime: string;
  readonly renewTime: string;
  readonly leaseTransitions: number;
}

export interface ObservedLease {
  readonly record: LeaseRecord;
  /** The object's resourceVersion: any write changes it. */
  readonly version: string;
}

/** The Lease as an elector needs it: read, create, and replace only if unchanged since `version`. */
export interface LeaseStore {
  /** e.g. "lease kube-system/kubeconfig-rotator-approver", for logs. */
  readonly description: string;
  get(): Promise<ObservedLease | undefined>;
  create(record: LeaseRecord): Promise<ObservedLease>;
  update(record: LeaseRecord, version: string): Promise<ObservedLease>;
}

export interface ElectionTiming {
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

/** client-go's defaults, which the design asks for. */
export const DEFAULT_TIMING: ElectionTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

export interface LeaderElectorOptions {
  readonly store: LeaseStore;
  readonly identity: string;
  readonly timing?: ElectionTiming;
  readonly clock?: Clock;
  /** Uniform in [0, 1): spreads candidates' retries as client-go's jitter does. */
  readonly random?: () => number;
  readonly logger: Logger;
  onStartedLeading(): void;
  /** Called once per term, the moment leadership is lost or given up; work must stop at once. */
  onStoppedLeading(reason: string): void;
}

export interface LeaderElector {
  readonly isLeader: boolean;
  /** The holder last seen in the Lease ('' when none). */
  readonly observedLeader: string;
  start(): void;
  /** Stops campaigning and, when leading, releases the Lease so another replica takes over at once. */
  stop(): Promise<void>;
}

// client-go's JitterFactor for candidates: each waits retryPeriod x [1, 2.2).
const CANDIDATE_JITTER = 1.2;
// Try just after the observed lease expires rather than a whole retry period later.
const EXPIRY_MARGIN_MS = 50;

export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

class HeldByOther extends Error {}

export function createLeaderElector(options: LeaderElectorOptions): LeaderElector {
  const { store, identity, logger } = options;
  const timing = options.timing ?? DEFAULT_TIMING;
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const stopping = new AbortController();
  const stopped = () => stopping.signal.aborted;
  let observed: ObservedLease | undefined;
  let observedAt = 0;
  let leading = false;
  let renewedAt = 0;
  let loop: Promise<void> | undefined;

  function observe(lease: ObservedLease): void {
    if (lease.version === observed?.version) return;
    if (lease.record.holderIdentity !== observed?.record.holderIdentity) {
      logger.info(
        { lease: store.description, holder: lease.record.holderIdentity || '(none)' },
        'lease holder observed',
      );
    }
    observed = lease;
    observedAt = clock.monotonic();
  }

  async function tryAcquireOrRenew(): Promise<void> {
    const now = microTime(clock.now());
    const current = await store.get();
    if (current === undefined) {
      observe(
        await store.create({
          holderIdentity: identity,
          leaseDurationSeconds: timing.leaseDurationMs / 1000,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: 0,
        }),
      );
      return;
    }
    observe(current);
    const { record } = current;
    const ours = record.holderIdentity === identity;
    if (!ours && record.holderIdentity !== '' && clock.monotonic() < observedAt + record.leaseDurationSeconds * 1000) {
      throw new HeldByOther(`held by ${record.holderIdentity}`);
    }
    observe(
      await store.update(
        {
          holderIdentity: identity,
          leaseDurationSeconds: timing.leaseDurationMs / 1000,
          acquireTime: ours ? record.acquireTime : now,
          renewTime: now,
          leaseTransitions: ours ? record.leaseTransitions : record.leaseTransitions + 1,
        },
        current.version,
      ),
    );
  }

  function stepDown(reason: string, level: 'info' | 'warn' = 'warn'): void {
    if (!leading) return;
    leading = false;
    logger[level]({ lease: store.description, reason }, 'stopped leading');
    options.onStoppedLeading(reason);
  }

  /** One attempt, given up (not awaited further) when it outlives `budgetMs`. */
  async function attempt(budgetMs: number): Promise<'ok' | 'heldByOther' | 'failed' | 'timedOut'> {
    const pending = tryAcquireOrRenew().then(
      () => 'ok' as const,
      (error: unknown) => {
        if (error instanceof HeldByOther) return 'heldByOther' as const;
        if (!stopped()) logger.debug({ lease: store.description, error: describeError(error) }, 'lease attempt failed');
        return 'failed' as const;
      },
    );
    const timeout = new AbortController();
    const timer = clock
      .sleep(Math.max(0, budgetMs), AbortSignal.any([timeout.signal, stopping.signal]))
      .then(() => 'timedOut' as const);
    const outcome = await Promise.race([pending, timer]);
    timeout.abort();
    return outcome;
  }

  function nextDelay(outcome: Awaited<ReturnType<typeof attempt>>): number {
    if (leading) return timing.retryPeriodMs;
    const jittered = timing.retryPeriodMs * (1 + random() * CANDIDATE_JITTER);
    // Only a lease seen held by another is worth trying right at its expiry: after a failed attempt the store
    // may be refusing writes, and trying again at once would loop as fast as it answers.
    if (outcome !== 'heldByOther') return jittered;
    const holder = observed?.record;
    if (holder === undefined || holder.holderIdentity === '' || holder.holderIdentity === identity) return jittered;
    const untilExpiry = observedAt + holder.leaseDurationSeconds * 1000 - clock.monotonic() + EXPIRY_MARGIN_MS;
    return Math.max(0, Math.min(jittered, untilExpiry));
  }

  async function campaign(): Promise<void> {
    while (!stopped()) {
      const started = clock.monotonic();
      const budget = leading ? renewedAt + timing.renewDeadlineMs - started : timing.renewDeadlineMs;
      const outcome = await attempt(budget);
      if (stopped()) return;
      if (outcome === 'ok') {
        renewedAt = started;
        if (!leading) {
          leading = true;
          logger.info({ lease: store.description, identity }, 'started leading');
          options.onStartedLeading();
        }
      } else if (leading && outcome === 'heldByOther') {
        stepDown(`the lease is now held by ${observed?.record.holderIdentity ?? 'another candidate'}`);
      } else if (leading && clock.monotonic() - renewedAt >= timing.renewDeadlineMs) {
        stepDown(`could not renew the lease within ${String(timing.renewDeadlineMs)} ms`);
      }
      await clock.sleep(nextDelay(outcome), stopping.signal);
    }
  }

  async function release(): Promise<void> {
    for (let tries = 0; tries < 2; tries++) {
      const current = tries === 0 ? observed : await store.get();
      if (current?.record.holderIdentity !== identity) return;
      const now = microTime(clock.now());
      try {
        await store.update(
          { ...current.record, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
          current.version,
        );
        logger.info({ lease: store.description }, 'lease released');
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
  }

  return {
    get isLeader() {
      return leading;
    },
    get observedLeader() {
      return observed?.record.holderIdentity ?? '';
    },
    start() {
      loop ??= campaign();
    },
    async stop() {
      const wasLeading = leading;
      stopping.abort();
      stepDown('shutting down', 'info');
      await loop;
      if (!wasLeading) return;
      try {
        await release();
      } catch (error) {
        logger.warn(
          { lease: store.description, error: describeError(error) },
          'could not release the lease; another replica takes over when it expires',
        );
      }
    },
  };
}

// The JSON's MicroTime text (V1Lease's type says Date, which is client-node's parsed form).
const timeText = (value: unknown): string => (typeof value === 'string' ? value : '');

function fromLease(lease: V1Lease): ObservedLease {
  const spec = lease.spec ?? {};
  return {
    record: {
      holderIdentity: spec.holderIdentity ?? '',
      leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
      acquireTime: timeText(spec.acquireTime),
      renewTime: timeText(spec.renewTime),
      leaseTransitions: spec.leaseTransitions ?? 0,
    },
    version: lease.metadata?.resourceVersion ?? '',
  };
}

function toSpec(record: LeaseRecord) {
  // The apiserver accepts only MicroTime here (RFC 3339 with six fractional digits).
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: record.acquireTime,
    renewTime: record.renewTime,
    leaseTransitions: record.leaseTransitions,
  };
}

export function kubeLeaseStore(client: KubeClient, namespace: string, name: string): LeaseStore {
  const leases = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  const lease = `${leases}/${encodeURIComponent(name)}`;
  return {
    description: `lease ${namespace}/${name}`,
    async get() {
      try {
        return fromLease(await client.request<V1Lease>('GET', lease));
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async create(record) {
      return fromLease(
        await client.request<V1Lease>('POST', leases, {
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace },
            spec: toSpec(record),
          },
        }),
      );
    },
    async update(record, version) {
      return fromLease(
        await client.request<V1Lease>('PUT', lease, {
          body: {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name, namespace, resourceVersion: version },
            spec: toSpec(record),
          },
        }),
      );
    },
  };
}
