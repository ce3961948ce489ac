// Time that moves only when a test says (the rotation loop, the informer, leader election, the work queue and
// rate limits all take this clock): sleepers wake in order as the test advances it, with pending promise
// callbacks run between wake-ups, so a test states "15 seconds later" exactly and runs in milliseconds.
import { setImmediate } from 'node:timers/promises';
import type { Clock } from '../../src/io/clock.ts';

interface Sleeper {
  readonly at: number;
  readonly wake: () => void;
}

/** Lets every callback that is ready run (promise chains many links long, and child processes' results). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await setImmediate();
}

export class ManualClock implements Clock {
  readonly #start: number;
  #time: number;
  readonly #sleepers = new Set<Sleeper>();

  /** `start` is the wall-clock time the clock shows first. */
  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.#start = start;
    this.#time = start;
  }

  now(): number {
    return this.#time;
  }

  /** Milliseconds since the clock was made. */
  monotonic(): number {
    return this.#time - this.#start;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const onAbort = () => {
        this.#sleepers.delete(sleeper);
        resolve();
      };
      const sleeper: Sleeper = {
        at: this.#time + Math.max(0, ms),
        wake: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.#sleepers.add(sleeper);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Sleepers not yet woken or aborted: zero once everything has stopped. */
  get pending(): number {
    return this.#sleepers.size;
  }

  /** The earliest time a sleeper waits for; undefined when none waits. */
  nextWake(): number | undefined {
    return this.#earliest()?.at;
  }

  /** Moves time forward by `ms`, waking each sleeper at its own moment. */
  async advance(ms: number): Promise<void> {
    const target = this.#time + ms;
    for (;;) {
      await settle();
      const next = this.#earliest();
      if (next === undefined || next.at > target) break;
      this.#sleepers.delete(next);
      this.#time = next.at;
      next.wake();
    }
    this.#time = target;
    await settle();
  }

  /**
   * Sets the wall clock to `time` at once, as when the process was suspended: every sleeper due by then wakes
   * and sees `time`.
   */
  async jumpTo(time: number): Promise<void> {
    this.#time = time;
    const due = [...this.#sleepers].filter((sleeper) => sleeper.at <= time);
    for (const sleeper of due) {
      this.#sleepers.delete(sleeper);
      sleeper.wake();
    }
    await settle();
  }

  /** Among sleepers due at the same moment, the one that went to sleep first. */
  #earliest(): Sleeper | undefined {
    let earliest: Sleeper | undefined;
    for (const sleeper of this.#sleepers) if (earliest === undefined || sleeper.at < earliest.at) earliest = sleeper;
    return earliest;
  }
}
