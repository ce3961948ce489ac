// The approver's controller: plumbing only. For each pending CSR of its signer: evaluate it against the
// current policy, ask the SubjectAccessReviews the evaluation wants, write the condition (leader only),
// then count, log and record an Event. Every decision is in src/core/policy (what is kept of a CSR in
// csr-record.ts); every API call is behind the small interfaces below; the queue and workers of a leadership
// term are src/io/kube/leader-workers.ts.
import {
  keptAs,
  keptBytes,
  type CacheStats,
  type CsrRecord,
  type CurrentPolicy,
  type WriteTarget,
} from '../core/policy/csr-record.ts';
import { conditionFor, eventFor, formatFinding, metricLabels, type Decision } from '../core/policy/decision.ts';
import { completeReview, evaluate, type NeedsReview, type ReviewAttributes } from '../core/policy/evaluate.ts';
import type { Requester } from '../core/policy/request-checks.ts';
import type { Clock } from '../io/clock.ts';
import { describeError } from '../io/kube/errors.ts';
import type { EventRecorder, InvolvedObject } from '../io/kube/events.ts';
import { LeaderWorkers, type LeaderWorkersOptions } from '../io/kube/leader-workers.ts';
import type { Logger } from '../io/log.ts';
import type { ApproverMetrics } from './metrics.ts';

export interface Condition {
  readonly type: 'Approved' | 'Denied';
  readonly reason: string;
  readonly message: string;
}

export type WriteOutcome = 'written' | 'alreadyDecided' | 'gone';

/** Writes a decision onto a CSR, with the resourceVersion it was judged at. */
export interface DecisionWriter {
  write(target: WriteTarget, condition: Condition): Promise<WriteOutcome>;
}

/** Asks the apiserver whether the requester may do what a policy's SubjectAccessReview names. */
export interface Reviewer {
  allowed(requester: Requester, attributes: ReviewAttributes): Promise<boolean>;
}

export interface CsrCache {
  get(name: string): CsrRecord | undefined;
  values(): IterableIterator<CsrRecord>;
}

export interface ControllerOptions {
  readonly policy: () => CurrentPolicy;
  readonly writer: DecisionWriter;
  readonly reviewer: Reviewer;
  readonly events: EventRecorder;
  readonly metrics: ApproverMetrics;
  readonly logger: Logger;
  readonly workers: number;
  /** now for the decision latency (from the CSR's creationTimestamp); monotonic for the durations logged. */
  readonly clock: Pick<Clock, 'now' | 'monotonic'> & LeaderWorkersOptions['clock'];
  readonly retry?: LeaderWorkersOptions['retry'];
}

/** A failed API call, named for the errors metric. */
class OperationError extends Error {
  readonly operation: 'review' | 'write';
  constructor(operation: 'review' | 'write', cause: unknown) {
    super(`${operation} failed: ${describeError(cause)}`, { cause });
    this.operation = operation;
  }
}

/** How long deciding one CSR took, for its log line: the API calls apart from our own work. */
interface Timing {
  /** When a worker took the CSR (the clock's monotonic time). */
  readonly started: number;
  reviewMs: number;
  writeMs: number;
}

const roundMs = (ms: number) => Math.round(ms * 100) / 100;

export class ApproverController {
  readonly #options: ControllerOptions;
  #cache: CsrCache | undefined;
  /** The queue and workers of the current leadership term. */
  readonly #workers: LeaderWorkers;
  /** Decisions this replica wrote that the cache has not caught up with yet. */
  readonly #written = new Set<string>();
  /** The policy generation at which an unprocessed or dry-run outcome was last reported, by CSR uid. */
  readonly #reported = new Map<string, number>();
  readonly #kept = { decided: { csrs: 0, bytes: 0 }, read: { csrs: 0, bytes: 0 }, unread: { csrs: 0, bytes: 0 } };

  constructor(options: ControllerOptions) {
    this.#options = options;
    this.#workers = new LeaderWorkers({
      workers: options.workers,
      clock: options.clock,
      ...(options.retry === undefined ? {} : { retry: options.retry }),
      process: (key, ended) => this.#process(key, ended),
      failed: (key, error, retryInMs) => {
        const operation = error instanceof OperationError ? error.operation : 'process';
        options.metrics.errors.inc({ operation });
        options.logger.warn({ csr: key, error: describeError(error), retryInMs }, 'could not decide; retrying');
      },
    });
  }

  /** The informer's handlers. */
  readonly handlers = {
    upsert: (key: string, record: CsrRecord, previous?: CsrRecord) => {
      if (previous !== undefined) this.#count(previous, -1);
      this.#count(record, 1);
      if (record.decided) {
        this.#written.delete(record.uid);
        this.#reported.delete(record.uid);
        return;
      }
      this.#workers.add(key);
    },
    remove: (_key: string, record: CsrRecord) => {
      this.#count(record, -1);
      this.#written.delete(record.uid);
      this.#reported.delete(record.uid);
    },
    // After every (re)list, the periodic resync: pending CSRs are looked at again.
    synced: () => {
      this.#enqueuePending();
    },
  };

  attach(cache: CsrCache): void {
    this.#cache = cache;
  }

  /** What the cache holds, by kind of record (the cache_csrs and cache_bytes gauges). */
  get cacheStats(): CacheStats {
    return this.#kept;
  }

  #count(record: CsrRecord, sign: 1 | -1): void {
    const entry = this.#kept[keptAs(record)];
    entry.csrs += sign;
    entry.bytes += sign * keptBytes(record);
  }

  get queueDepth(): number {
    return this.#workers.depth;
  }

  /**
   * The policy changed: unprocessed CSRs may now match. Unread ones wait until the cache has transformed them again
   * under the new policy (isUnread), and are then decided as they come back.
   */
  policyChanged(): void {
    this.#enqueuePending();
  }

  lead(): void {
    if (!this.#workers.start()) return;
    this.#options.metrics.leader.set(1);
    this.#enqueuePending();
  }

  /** Stops deciding at once: no write starts after this returns. */
  follow(): void {
    if (!this.#workers.end()) return;
    this.#options.metrics.leader.set(0);
  }

  /** Waits for the workers of ended terms (at shutdown, after follow()). */
  async drained(): Promise<void> {
    await this.#workers.drained();
  }

  #enqueuePending(): void {
    if (!this.#workers.leading || this.#cache === undefined) return;
    for (const record of this.#cache.values()) if (!record.decided) this.#workers.add(record.name);
  }

  async #process(name: string, ended: AbortSignal): Promise<void> {
    const record = this.#cache?.get(name);
    const pending = record?.pending;
    if (record === undefined || pending === undefined || this.#written.has(record.uid)) return;
    if (!pending.read) {
      const { generation } = this.#options.policy();
      // Judged under an older policy: the cache brings it back under the current one.
      if (pending.generation !== generation || this.#reported.get(record.uid) === generation) return;
      const timing: Timing = { started: this.#options.clock.monotonic(), reviewMs: 0, writeMs: 0 };
      await this.#conclude(record, pending.username, pending.write, pending.decision, generation, timing, ended);
      return;
    }
    const { facts } = pending;
    for (;;) {
      const { file, generation } = this.#options.policy();
      // Within one policy generation an unprocessed or dry-run outcome cannot change (policies apply by requester,
      // and a CSR's spec is immutable): a resync does not review and evaluate it again.
      if (this.#reported.get(record.uid) === generation) return;
      const timing: Timing = { started: this.#options.clock.monotonic(), reviewMs: 0, writeMs: 0 };
      const evaluation = evaluate(facts, file);
      const decision =
        evaluation.result === 'review' ? await this.#review(evaluation, facts.requester, timing) : evaluation;
      // The policy changed while the reviews were asked (a policy removed, say): decide again under the new one.
      if (this.#options.policy().generation !== generation) continue;
      await this.#conclude(record, facts.requester.username, pending.write, decision, generation, timing, ended);
      return;
    }
  }

  async #conclude(
    record: CsrRecord,
    requester: string,
    write: WriteTarget,
    decision: Decision,
    generation: number,
    timing: Timing,
    ended: AbortSignal,
  ): Promise<void> {
    if (decision.result === 'unprocessed' || decision.dryRun) {
      if (decision.result === 'unprocessed' && decision.reason === 'otherSigner') return;
      this.#reported.set(record.uid, generation);
      this.#report(record, requester, decision, timing);
      return;
    }
    if (ended.aborted) return;
    let outcome: WriteOutcome;
    const writeStarted = this.#options.clock.monotonic();
    try {
      outcome = await this.#options.writer.write(write, conditionFor(decision, requester));
    } catch (error) {
      throw new OperationError('write', error);
    }
    timing.writeMs = this.#options.clock.monotonic() - writeStarted;
    if (outcome !== 'written') {
      this.#options.logger.info(
        { csr: record.name, outcome },
        'CSR changed before the decision was written; nothing to do',
      );
      return;
    }
    this.#written.add(record.uid);
    // From the apiserver's creationTimestamp: wall-clock time, the only clock the two share.
    const latency = (this.#options.clock.now() - record.createdAt) / 1000;
    if (Number.isFinite(latency))
      this.#options.metrics.decisionLatency.observe({ result: decision.result }, Math.max(0, latency));
    this.#report(record, requester, decision, timing);
  }

  async #review(evaluation: NeedsReview, requester: Requester, timing: Timing): Promise<Decision> {
    const answers: boolean[] = [];
    for (const candidate of evaluation.candidates) {
      let allowed: boolean;
      const reviewStarted = this.#options.clock.monotonic();
      try {
        allowed = await this.#options.reviewer.allowed(requester, candidate.attributes);
      } catch (error) {
        throw new OperationError('review', error);
      }
      timing.reviewMs += this.#options.clock.monotonic() - reviewStarted;
      answers.push(allowed);
      if (allowed) break;
    }
    return completeReview(evaluation, answers);
  }

  /** The log says how long deciding took, and how much of it the reviews and the write took. */
  #report(record: CsrRecord, requester: string, decision: Decision, timing: Timing): void {
    const labels = metricLabels(decision);
    const dryRun = decision.result !== 'unprocessed' && decision.dryRun;
    this.#options.metrics.decisions.inc({ ...labels, dry_run: String(dryRun) });
    const involved: InvolvedObject = {
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      name: record.name,
      uid: record.uid,
    };
    const event = eventFor(decision);
    if (event.type === 'Normal') this.#options.events.normal(event.reason, event.message, involved);
    else this.#options.events.warning(event.reason, event.message, involved);
    const fields = {
      csr: record.name,
      requester,
      ...labels,
      dryRun,
      durationMs: roundMs(this.#options.clock.monotonic() - timing.started),
      reviewMs: roundMs(timing.reviewMs),
      writeMs: roundMs(timing.writeMs),
      ...(decision.result === 'denied' ? { findings: decision.findings.map(formatFinding) } : {}),
    };
    this.#options.logger.info(
      fields,
      decision.result === 'unprocessed'
        ? 'no policy applies; left pending'
        : dryRun
          ? 'dry run: decision not written'
          : 'decision written',
    );
  }
}
