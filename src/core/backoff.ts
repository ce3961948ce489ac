// Exponential backoff, shared by every retry loop: the delay before retry number `failures` (1 for the first
// failure), doubling from `initialMs` up to `maxMs`. Callers scale it by their own jitter.
export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

export function backoffDelay(failures: number, backoff: Backoff): number {
  // Past 2^30 the cap has long been reached; this keeps the power finite.
  const exponent = Math.min(Math.max(failures, 1) - 1, 30);
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** exponent);
}
