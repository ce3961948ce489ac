// The approver's Prometheus metrics (prefix kubeconfig_rotator_approver_). Labels hold only bounded values:
// policy names from the file, results, and check names; never anything from a request.
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { CacheStats } from '../core/policy/csr-record.ts';

const PREFIX = 'kubeconfig_rotator_approver_';

export interface ApproverMetrics {
  readonly decisions: Counter<'policy' | 'result' | 'reason' | 'dry_run'>;
  readonly decisionLatency: Histogram<'result'>;
  readonly leader: Gauge;
  readonly policyGeneration: Gauge;
  readonly policyReloadErrors: Counter;
  readonly queueDepth: Gauge;
  readonly errors: Counter<'operation'>;
  readonly informerRestarts: Counter<'reason'>;
  readonly droppedEvents: Counter;
}

/** What gauges read when scraped. */
export interface MetricSources {
  queueDepth(): number;
  cache(): CacheStats;
}

export function approverMetrics(registry: Registry, sources: MetricSources): ApproverMetrics {
  collectDefaultMetrics({ register: registry, prefix: `${PREFIX}process_` });
  const cacheKinds = (read: (entry: CacheStats['read']) => number) =>
    function (this: Gauge<'kept'>) {
      for (const [kept, entry] of Object.entries(sources.cache())) this.set({ kept }, read(entry));
    };
  new Gauge({
    name: `${PREFIX}cache_csrs`,
    help: 'CSRs in the cache by what is kept of them: kept="decided" (name, uid, creation time), "read" (a policy could apply: the parsed request), "unread" (none could: the request was not parsed).',
    labelNames: ['kept'],
    registers: [registry],
    collect: cacheKinds((entry) => entry.csrs),
  });
  new Gauge({
    name: `${PREFIX}cache_bytes`,
    help: 'About how many bytes the cached records keep (characters and byte lengths, 8 per number, 16 per property), by kept (as cache_csrs).',
    labelNames: ['kept'],
    registers: [registry],
    collect: cacheKinds((entry) => entry.bytes),
  });
  return {
    decisions: new Counter({
      name: `${PREFIX}decisions_total`,
      help: 'CSR decisions by policy, result (approved, denied, unprocessed) and reason (approval path, first failing check, or why unprocessed); dry_run="true" for decisions that were not written.',
      labelNames: ['policy', 'result', 'reason', 'dry_run'],
      registers: [registry],
    }),
    decisionLatency: new Histogram({
      name: `${PREFIX}decision_latency_seconds`,
      help: 'From CSR creation (metadata.creationTimestamp, whole seconds) to the decision written.',
      labelNames: ['result'],
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    }),
    leader: new Gauge({
      name: `${PREFIX}leader`,
      help: '1 while this replica holds the lease and decides, 0 otherwise.',
      registers: [registry],
    }),
    policyGeneration: new Gauge({
      name: `${PREFIX}policy_generation`,
      help: 'Generation of the policy in use: 1 at start, +1 for each change applied.',
      registers: [registry],
    }),
    policyReloadErrors: new Counter({
      name: `${PREFIX}policy_reload_errors_total`,
      help: 'New policy files that were rejected (the previous policy stays in use).',
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: `${PREFIX}queue_depth`,
      help: 'CSRs waiting to be decided (including those waiting to retry).',
      registers: [registry],
      collect() {
        this.set(sources.queueDepth());
      },
    }),
    errors: new Counter({
      name: `${PREFIX}errors_total`,
      help: 'Failed API operations (each is retried with backoff): review, write.',
      labelNames: ['operation'],
      registers: [registry],
    }),
    informerRestarts: new Counter({
      name: `${PREFIX}informer_restarts_total`,
      help: 'Times the CSR informer relisted after a failure (reason="error") or a silence (reason="watchdog").',
      labelNames: ['reason'],
      registers: [registry],
    }),
    droppedEvents: new Counter({
      name: `${PREFIX}events_dropped_total`,
      help: 'Kubernetes Events not sent because too many were already waiting for the client rate limit.',
      registers: [registry],
    }),
  };
}
