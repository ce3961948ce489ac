// Client-side rate limiting of API requests, as client-go does it: a token bucket refilled at `qps` holding at
// most `burst` tokens. Each request reserves the next token, so waiters are served in order; requests beyond
// `maxWaiting` are refused at once instead of piling up in memory (best-effort traffic such as Events).
import { systemClock, type Clock } from '../clock.ts';

export interface RateLimiter {
  /** Resolves when the request may go; rejects when too many already wait, or when `signal` aborts. */
  acquire(): Promise<void>;
  /** Requests waiting for a token now. */
  readonly waiting: number;
}

export interface TokenBucketOptions {
  /** Tokens per second; 0 or Infinity means no limit. */
  readonly qps: number;
  readonly burst: number;
  readonly maxWaiting?: number;
  readonly clock?: Pick<Clock, 'monotonic' | 'sleep'>;
  /** Aborting it fails every waiting request (at shutdown). */
  readonly signal?: AbortSignal;
  /** Called for each request refused because `maxWaiting` were already waiting. */
  readonly onRefused?: () => void;
}

export function tokenBucket(options: TokenBucketOptions): RateLimiter {
  const { qps } = options;
  const burst = Math.max(1, options.burst);
  const clock = options.clock ?? systemClock;
  const maxWaiting = options.maxWaiting ?? Infinity;
  const signal = options.signal ?? new AbortController().signal;
  let tokens = burst;
  let refilledAt = clock.monotonic();
  let waiting = 0;
  if (qps <= 0 || qps === Infinity) return { acquire: () => Promise.resolve(), waiting: 0 };
  return {
    async acquire() {
      const now = clock.monotonic();
      tokens = Math.min(burst, tokens + ((now - refilledAt) * qps) / 1000);
      refilledAt = now;
      if (tokens >= 1) {
        tokens -= 1;
        return;
      }
      if (waiting >= maxWaiting) {
        options.onRefused?.();
        throw new Error(`more than ${String(maxWaiting)} requests waiting for the client rate limit`);
      }
      // Reserve the next token now (the balance goes negative): later callers queue behind this one.
      tokens -= 1;
      waiting++;
      try {
        await clock.sleep((-tokens * 1000) / qps, signal);
      } finally {
        waiting--;
      }
      signal.throwIfAborted();
    },
    get waiting() {
      return waiting;
    },
  };
}
