// Time for the long-running loops (rotation, informer, leader election, work queue, rate limits), injected so
// that unit tests drive it by hand. A sleep ends early and quietly on abort: shutdown is not an error, and each
// caller checks its signal afterwards.
import { setTimeout as sleep } from 'node:timers/promises';

export interface Clock {
  /** Wall-clock milliseconds since the epoch: certificate validity, Lease times, timestamps people read. */
  now(): number;
  /** Monotonic milliseconds, for every duration measured (it does not jump when the wall clock is set). */
  monotonic(): number;
  /** Resolves after `ms`, or early (without error) when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  sleep: (ms, signal) =>
    sleep(ms, undefined, { signal }).catch((error: unknown) => {
      if (!signal.aborted) throw error;
    }),
};
