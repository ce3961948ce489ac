// Work done only while leading, as kube-controller-manager runs its controllers under leader election: each
// leadership term has its own work queue, its workers and a signal. Ending a term aborts the signal and closes
// the queue at once, so no worker takes another key and work in flight can check the signal before it writes;
// its workers finish in the background (drained() waits for them). A new term starts with an empty queue.
import { WorkQueue, type WorkQueueOptions } from './work-queue.ts';

export interface LeaderWorkersOptions {
  readonly workers: number;
  readonly clock?: WorkQueueOptions['clock'];
  readonly retry?: WorkQueueOptions['retry'];
  /** Works on one key; a rejection retries the key after the queue's backoff. `ended` aborts with the term. */
  process(key: string, ended: AbortSignal): Promise<void>;
  /** A key failed during its term and is retried in `retryInMs`; a failure once the term ended is not reported. */
  failed(key: string, error: unknown, retryInMs: number): void;
}

/** One leadership term: its own queue and workers, and a signal that ends it. */
interface Term {
  readonly queue: WorkQueue;
  readonly ended: AbortController;
  workers: Promise<void>;
}

export class LeaderWorkers {
  readonly #options: LeaderWorkersOptions;
  #term: Term | undefined;
  readonly #ending = new Set<Promise<void>>();

  constructor(options: LeaderWorkersOptions) {
    this.#options = options;
  }

  get leading(): boolean {
    return this.#term !== undefined;
  }

  /** Keys of the current term waiting, in process, or waiting for a retry; 0 while not leading. */
  get depth(): number {
    return this.#term?.queue.length ?? 0;
  }

  /** Starts a term; false when one is already running. */
  start(): boolean {
    if (this.#term !== undefined) return false;
    const queue = new WorkQueue({
      ...(this.#options.clock === undefined ? {} : { clock: this.#options.clock }),
      ...(this.#options.retry === undefined ? {} : { retry: this.#options.retry }),
    });
    const term: Term = { queue, ended: new AbortController(), workers: Promise.resolve() };
    term.workers = Promise.all(Array.from({ length: this.#options.workers }, () => this.#work(term))).then(
      () => undefined,
    );
    this.#term = term;
    return true;
  }

  /** Ends the term at once: its signal aborts and no key is taken after this returns. False when not leading. */
  end(): boolean {
    const term = this.#term;
    if (term === undefined) return false;
    this.#term = undefined;
    term.ended.abort();
    term.queue.close();
    const ending = term.workers.finally(() => this.#ending.delete(ending));
    this.#ending.add(ending);
    return true;
  }

  /** Queues a key in the current term; nothing while not leading. */
  add(key: string): void {
    this.#term?.queue.add(key);
  }

  /** Waits for the workers of ended terms (at shutdown, after end()). */
  async drained(): Promise<void> {
    await Promise.all(this.#ending);
  }

  async #work(term: Term): Promise<void> {
    for (;;) {
      let key: string;
      try {
        key = await term.queue.next();
      } catch {
        return;
      }
      try {
        await this.#options.process(key, term.ended.signal);
        term.queue.forget(key);
      } catch (error) {
        if (term.ended.signal.aborted) continue;
        this.#options.failed(key, error, term.queue.retryLater(key));
      } finally {
        term.queue.done(key);
      }
    }
  }
}
