// Virtual time for the approver's timing logic (leader election, retries, rate limits): sleepers wake in
// order as a test advances the clock, with pending promise callbacks run between wake-ups, so a test states
// "15 seconds later" exactly and runs in milliseconds.
import { setImmediate } from 'node:timers/promises';
import type { Clock } from '../../src/io/kube/leader-election.ts';

interface Sleeper {
  readonly at: number;
  readonly wake: () => void;
}

/** Lets every callback that is ready run (promise chains several links long included). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await setImmediate();
}

export class VirtualClock implements Clock {
  #time = 0;
  readonly #wallBase = Date.parse('2026-01-01T00:00:00Z');
  readonly #sleepers = new Set<Sleeper>();

  wall(): number {
    return this.#wallBase + this.#time;
  }

  monotonic(): number {
    return this.#time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason as Error);
        return;
      }
      const onAbort = () => {
        this.#sleepers.delete(sleeper);
        reject(signal?.reason as Error);
      };
      const sleeper: Sleeper = {
        at: this.#time + Math.max(0, ms),
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#sleepers.add(sleeper);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Sleepers not yet woken or aborted: zero once everything has stopped. */
  get pending(): number {
    return this.#sleepers.size;
  }

  /** Moves time forward by `ms`, waking each sleeper at its own moment. */
  async advance(ms: number): Promise<void> {
    const target = this.#time + ms;
    for (;;) {
      await settle();
      let next: Sleeper | undefined;
      for (const sleeper of this.#sleepers)
        if (sleeper.at <= target && (next === undefined || sleeper.at < next.at)) next = sleeper;
      if (next === undefined) break;
      this.#sleepers.delete(next);
      this.#time = next.at;
      next.wake();
    }
    this.#time = target;
    await settle();
  }
}
