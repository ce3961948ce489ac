// A work queue of object keys with client-go's guarantees: a key is queued at most once however often it is
// added, never handed to two workers at once (added while in process, it is queued again when done), and a
// failing key is retried after a per-key exponential backoff.
import { backoffDelay, type Backoff } from '../../core/backoff.ts';
import { systemClock, type Clock } from '../clock.ts';

export interface WorkQueueOptions {
  readonly clock?: Pick<Clock, 'sleep'>;
  readonly retry?: Backoff;
}

export class QueueClosed extends Error {}

export class WorkQueue {
  readonly #clock: Pick<Clock, 'sleep'>;
  readonly #retry: Backoff;
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #waiters: { resolve: (key: string) => void; reject: (error: Error) => void }[] = [];
  #delayed = 0;
  readonly #cancelDelayed = new AbortController();
  #closed = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#retry = options.retry ?? { initialMs: 1_000, maxMs: 5 * 60_000 };
  }

  /** Keys waiting, in process, or waiting for a retry. */
  get length(): number {
    return this.#queue.length + this.#processing.size + this.#delayed;
  }

  add(key: string): void {
    if (this.#closed || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return;
    const waiter = this.#waiters.shift();
    if (waiter === undefined) this.#queue.push(key);
    else this.#hand(key, waiter);
  }

  /** The next key to work on; call done(key) when finished with it. */
  next(): Promise<string> {
    if (this.#closed) return Promise.reject(new QueueClosed('queue closed'));
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key) && !this.#closed) {
      this.#dirty.delete(key);
      this.add(key);
    }
  }

  /** Queues the key again after its backoff (1 s, 2 s, 4 s... up to 5 min by default). */
  retryLater(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = backoffDelay(failures, this.#retry);
    this.#delayed++;
    // Cut short by close(), where add() is refused.
    void this.#clock.sleep(delay, this.#cancelDelayed.signal).then(() => {
      this.#delayed--;
      this.add(key);
    });
    return delay;
  }

  /** Ends the backoff of a key that succeeded or went away. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Drops every queued key and pending retry, fails every waiting next() and refuses new work. */
  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
    this.#dirty.clear();
    this.#failures.clear();
    this.#cancelDelayed.abort();
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new QueueClosed('queue closed'));
  }

  #hand(key: string, waiter: { resolve: (key: string) => void }): void {
    this.#dirty.delete(key);
    this.#processing.add(key);
    waiter.resolve(key);
  }
}
