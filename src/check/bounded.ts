// Every call the check makes is bounded in time: a cluster that never answers is a failed check, not a hang. The
// call is given a signal that aborts when its time is up, so a request that outlives its bound is cancelled
// (its connection closed), not abandoned. readOptional reads one object so: undefined when it does not exist.
import { setTimeout as sleep } from 'node:timers/promises';
import { isNotFound } from '../io/kube/errors.ts';

export const CALL_TIMEOUT_MS = 15_000;

export class TimeoutError extends Error {}

/** `call`'s result, or a TimeoutError after `ms` (and `call`'s signal aborted); the timer never outlives it. */
export async function bounded<T>(
  what: string,
  call: (signal: AbortSignal) => Promise<T>,
  ms = CALL_TIMEOUT_MS,
): Promise<T> {
  const timer = new AbortController();
  const request = new AbortController();
  try {
    return await Promise.race([
      call(request.signal),
      sleep(ms, undefined, { signal: timer.signal }).then(() => {
        const error = new TimeoutError(`${what}: no answer within ${String(ms / 1000)} s`);
        request.abort(error);
        throw error;
      }),
    ]);
  } finally {
    timer.abort();
  }
}

/** Reads one object: undefined when it does not exist; any other failure is thrown. */
export async function readOptional<T>(what: string, read: (signal: AbortSignal) => Promise<T>): Promise<T | undefined> {
  try {
    return await bounded(what, read);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** The `code` of an error and of its causes (Node's TLS and connection codes). */
export function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    const { code } = current as Error & { code?: unknown };
    if (typeof code === 'string') codes.push(code);
  }
  return codes;
}
