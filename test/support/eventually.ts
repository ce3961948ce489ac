// Waiting in tests: for a condition, with a bound, and never a fixed sleep as proof. `eventually` stops as soon
// as the condition holds; `consistently` checks that nothing more happens within a stated window, after the
// test has waited for what would have happened first (docs: /work/shared/STYLE.md, "Tests that say what they
// prove").
import { setTimeout as sleep } from 'node:timers/promises';

export interface Bound {
  /** How long to wait at most; 15 s unless said. */
  readonly timeoutMs?: number;
  /** How long between tries; 100 ms unless said. */
  readonly intervalMs?: number;
  /** What is waited for, named in the error when it never happens. */
  readonly description?: string;
}

export interface Window {
  /** How long the condition must keep holding. */
  readonly forMs: number;
  /** How often it is checked meanwhile; 20 ms unless said. */
  readonly intervalMs?: number;
  /** What must keep holding, named in the error when it stops. */
  readonly description?: string;
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Tries `condition` until it neither throws nor returns `false`, and resolves to what it returned then (an
 * assertion block that returns nothing holds once it stops throwing). After `timeoutMs` it throws, naming
 * `description`, with the last failure as its cause.
 */
export async function eventually<T>(condition: () => T | Promise<T>, options: Bound = {}): Promise<Exclude<T, false>> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const result = await condition();
      if (result !== false) return result as Exclude<T, false>;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const what = options.description ?? 'the condition';
      const why = last === undefined ? '' : `: ${messageOf(last)}`;
      throw new Error(`gave up waiting for ${what} after ${String(timeoutMs)} ms${why}`, { cause: last });
    }
    await sleep(Math.min(options.intervalMs ?? 100, Math.max(0, deadline - Date.now())));
  }
}

/**
 * Checks that `condition` keeps holding (neither throws nor returns `false`) for `forMs`, and throws at the
 * first check where it does not. Use it after waiting for what would have happened first, so that the window
 * is not the only proof.
 */
export async function consistently(condition: () => unknown, window: Window): Promise<void> {
  const end = Date.now() + window.forMs;
  for (;;) {
    let failure: unknown;
    try {
      if ((await condition()) === false) failure = new Error('the condition returned false');
    } catch (error) {
      failure = error;
    }
    if (failure !== undefined) {
      const what = window.description ?? 'the condition';
      throw new Error(`${what} stopped holding within ${String(window.forMs)} ms: ${messageOf(failure)}`, {
        cause: failure,
      });
    }
    const left = end - Date.now();
    if (left <= 0) return;
    await sleep(Math.min(window.intervalMs ?? 20, left));
  }
}
