// Every call the check makes is bounded in time: a cluster that never answers is a failed check, not a hang.
import { setTimeout as sleep } from 'node:timers/promises';

export const CALL_TIMEOUT_MS = 15_000;

export class TimeoutError extends Error {}

/** `call`'s result, or a TimeoutError after `ms`; the timer never outlives the call. */
export async function bounded<T>(what: string, call: () => Promise<T>, ms = CALL_TIMEOUT_MS): Promise<T> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      call(),
      sleep(ms, undefined, { signal: timer.signal }).then(() => {
        throw new TimeoutError(`${what}: no answer within ${String(ms / 1000)} s`);
      }),
    ]);
  } finally {
    timer.abort();
  }
}
