// An informer that keeps going: list (in pages) then watch from the list's resourceVersion, with
// - the watch resumed where it stopped when the server closes it or the connection is cut off mid-stream;
// - a relist when the resourceVersion is too old (410 Gone) and on any other failure, after a jittered
//   exponential backoff (client-go's reflector: 800 ms to 30 s; never a tight loop), and periodically as a
//   backstop, from the watch cache (client-node's own informer stops for good on such errors);
// - a watchdog that forces a relist when nothing (an event, a list page) has been heard for too long, and
//   reports the informer as not alive if even that does not help, so a liveness probe can restart the process.
// Objects are stored through a transform, so a cache of thousands keeps only what its user needs; when what the
// transform keeps depends on something outside the object (the approver's policy), refresh() transforms again.
import { backoffDelay, type Backoff } from '../../core/backoff.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { describeError, httpStatus } from './errors.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface ListPage<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
  readonly continue?: string;
}

/** Where the objects come from: a paged list and a watch, as the Kubernetes API offers them. */
export interface ListOptions {
  readonly limit: number;
  readonly continue?: string;
  /**
   * First page only: a list at least as recent as this resourceVersion, which the apiserver's watch cache
   * serves (resourceVersionMatch=NotOlderThan); unset: the most recent, a consistent read.
   */
  readonly notOlderThan?: string;
}

/** Where the objects come from: a paged list and a watch, as the Kubernetes API offers them. */
export interface ListWatchSource<T> {
  list(options: ListOptions): Promise<ListPage<T>>;
  /**
   * Starts a watch from `resourceVersion`; `onEvent` gets each event and `onDone` is called exactly once when
   * it ends (no error: closed normally or by the inactivity timer). Returns a handle to stop it early;
   * `signal` gives up on a start still under way (the handle is then never needed).
   */
  watch(
    resourceVersion: string,
    onEvent: (type: WatchEventType, object: unknown) => void,
    onDone: (error?: unknown) => void,
    signal?: AbortSignal,
  ): Promise<{ abort(): void }>;
}

export interface InformerHandlers<R> {
  /** A new object, or a changed one (`previous` is the stored record it replaces). */
  upsert(key: string, record: R, previous: R | undefined): void;
  remove(key: string, record: R): void;
  /** After each complete (re)list: the cache now reflects the server. */
  synced?(): void;
}

export interface InformerOptions<T, R> {
  readonly source: ListWatchSource<T>;
  readonly describe: string;
  key(object: T): string;
  /** metadata.resourceVersion: an unchanged object is not delivered again on relist. */
  version(object: T): string;
  transform(object: T): R;
  readonly handlers: InformerHandlers<R>;
  readonly logger: Logger;
  readonly clock?: Pick<Clock, 'monotonic' | 'sleep'>;
  readonly random?: () => number;
  readonly pageSize?: number;
  /** Relist this often even when the watch is healthy (the periodic resync). */
  readonly relistIntervalMs?: number;
  /** Relist when nothing (event, bookmark, connection) was heard for this long. */
  readonly watchdogMs?: number;
  /** A list page taking longer than this is a failure. */
  readonly requestTimeoutMs?: number;
  readonly backoff?: Backoff;
  /** Called when the informer restarts after a failure (with that failure) or the watchdog fires. */
  onRestart?(reason: 'error' | 'watchdog', error?: unknown): void;
}

export interface Informer<R> {
  start(): void;
  stop(): Promise<void>;
  /** True once the first list has been stored. */
  readonly synced: boolean;
  /** False when the watchdog could not bring the informer back: restart the process. */
  readonly alive: boolean;
  get(key: string): R | undefined;
  values(): IterableIterator<R>;
  readonly size: number;
  /**
   * Relists now, transforming again every stored record for which `stale` holds even if its object did not
   * change (a transform that dropped what it did not need then may need it now). Requests made while a relist is
   * in progress are served by another relist after it.
   */
  refresh(stale: (record: R) => boolean): void;
}

/** How a watch ended: closed by the server, ended for a relist, or cut off after it had started (with why). */
type SessionEnd = 'closed' | 'relist' | { readonly dropped: unknown };

class Expired extends Error {}

// client-go's reflector backs its relists off from 800 ms to 30 s.
const RELIST_BACKOFF: Backoff = { initialMs: 800, maxMs: 30_000 };

export function createInformer<T, R>(options: InformerOptions<T, R>): Informer<R> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const pageSize = options.pageSize ?? 500;
  const relistIntervalMs = options.relistIntervalMs ?? 10 * 60_000;
  const watchdogMs = options.watchdogMs ?? 3 * 60_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  const backoff = options.backoff ?? RELIST_BACKOFF;
  const { logger, handlers } = options;
  const stopping = new AbortController();
  const stopped = () => stopping.signal.aborted;
  let store = new Map<string, { version: string; record: R }>();
  let resourceVersion = '';
  // The resourceVersion of the last complete list, which a periodic relist asks the watch cache for.
  let listedVersion: string | undefined;
  let synced = false;
  let lastHeard = clock.monotonic();
  let watchdogFiredAt: number | undefined;
  let endSession: ((end: SessionEnd) => void) | undefined;
  let running: Promise<void> | undefined;
  // What refresh() asked for and no complete relist has served yet.
  let stale: ((record: R) => boolean) | undefined;

  const heard = () => {
    lastHeard = clock.monotonic();
    watchdogFiredAt = undefined;
  };

  async function withTimeout<V>(promise: Promise<V>, what: string): Promise<V> {
    const timeout = new AbortController();
    try {
      return await Promise.race([
        promise,
        clock.sleep(requestTimeoutMs, AbortSignal.any([timeout.signal, stopping.signal])).then(() => {
          throw new Error(
            stopped() ? `${what} abandoned: stopping` : `${what} took longer than ${String(requestTimeoutMs)} ms`,
          );
        }),
      ]);
    } finally {
      timeout.abort();
    }
  }

  /** `fresh`: a consistent read (the first list, after an expiry); else one the watch cache serves. */
  async function relist(fresh: boolean): Promise<void> {
    const serving = stale;
    const next = new Map<string, { version: string; record: R }>();
    const from = fresh ? undefined : listedVersion;
    let page: ListPage<T> | undefined;
    do {
      const continueToken = page?.continue;
      page = await withTimeout(
        options.source.list({
          limit: pageSize,
          ...(continueToken === undefined ? {} : { continue: continueToken }),
          ...(continueToken === undefined && from !== undefined ? { notOlderThan: from } : {}),
        }),
        'list',
      );
      if (stopped()) return;
      // A slow but healthy paged list is progress: the watchdog must not take it for silence.
      heard();
      for (const object of page.items) {
        const key = options.key(object);
        const version = options.version(object);
        const previous = store.get(key);
        if (previous?.version === version && serving?.(previous.record) !== true) {
          next.set(key, previous);
          continue;
        }
        const record = options.transform(object);
        next.set(key, { version, record });
        handlers.upsert(key, record, previous?.record);
      }
    } while (page.continue !== undefined && page.continue !== '');
    for (const [key, entry] of store) if (!next.has(key)) handlers.remove(key, entry.record);
    store = next;
    if (stale === serving) stale = undefined;
    resourceVersion = page.resourceVersion;
    listedVersion = page.resourceVersion;
    synced = true;
    heard();
    handlers.synced?.();
  }

  function apply(type: WatchEventType, object: unknown): void {
    heard();
    if (type === 'ERROR') {
      const code = (object as { code?: unknown } | undefined)?.code;
      throw code === 410
        ? new Expired('resourceVersion expired')
        : new Error(`watch error event: ${JSON.stringify(object).slice(0, 200)}`);
    }
    const typed = object as T;
    if (type !== 'BOOKMARK') {
      const key = options.key(typed);
      const previous = store.get(key);
      if (type === 'DELETED') {
        if (previous !== undefined) {
          store.delete(key);
          handlers.remove(key, previous.record);
        }
      } else {
        const version = options.version(typed);
        if (previous?.version !== version) {
          const record = options.transform(typed);
          store.set(key, { version, record });
          handlers.upsert(key, record, previous?.record);
        }
      }
    }
    resourceVersion = options.version(typed) || resourceVersion;
  }

  /**
   * One watch connection, until it ends; rejects on failures that need a relist after a backoff (an expired
   * resourceVersion as Expired). `onProgress` is called on each event other than an error.
   */
  function watchSession(onProgress: () => void): Promise<SessionEnd> {
    return new Promise<SessionEnd>((resolve, reject) => {
      let handle: { abort(): void } | undefined;
      let started = false;
      const starting = new AbortController();
      let finished = false;
      const finish = (end: SessionEnd | Error) => {
        if (finished) return;
        finished = true;
        endSession = undefined;
        // A start still under way is given up, not left to finish on its own.
        starting.abort();
        handle?.abort();
        if (end instanceof Error) reject(end);
        else resolve(end);
      };
      endSession = finish;
      const onEvent = (type: WatchEventType, object: unknown) => {
        if (finished) return;
        try {
          apply(type, object);
          onProgress();
        } catch (error) {
          finish(error instanceof Error ? error : new Error(String(error)));
        }
      };
      const onDone = (error?: unknown) => {
        if (error === undefined || error === null || (error instanceof Error && error.name === 'TimeoutError'))
          finish('closed');
        // A watch refused with 410 (rest.ts: a KubeApiError); the usual expiry is an ERROR event (apply).
        else if (httpStatus(error) === 410) finish(new Expired('resourceVersion expired'));
        else if (started) finish({ dropped: error });
        else finish(new Error(`watch failed: ${describeError(error)}`, { cause: error }));
      };
      options.source.watch(resourceVersion, onEvent, onDone, starting.signal).then(
        (opened) => {
          handle = opened;
          if (finished) {
            opened.abort();
            return;
          }
          started = true;
          heard();
        },
        (error: unknown) => {
          finish(new Error(`watch could not start: ${describeError(error)}`, { cause: error }));
        },
      );
    });
  }

  /**
   * Watches from the last resourceVersion, again after each close and once after a drop, until a relist is due;
   * rejects when it is due after a failure (a second drop with no event in between, an expiry, a watch that
   * cannot start).
   */
  async function watchUntilRelist(onProgress: () => void): Promise<void> {
    let progressed = true;
    for (;;) {
      if (stopped() || stale !== undefined) return;
      const startedAt = clock.monotonic();
      const end = await watchSession(() => {
        progressed = true;
        onProgress();
      });
      if (end === 'relist') return;
      if (end !== 'closed') {
        // A connection cut off mid-watch resumes where it was; cut off again before any event, it relists.
        if (!progressed) throw new Error(`watch failed: ${describeError(end.dropped)}`, { cause: end.dropped });
        progressed = false;
      }
      // A watch that the server closes at once, again and again, must not spin.
      if (clock.monotonic() - startedAt < 1_000) await clock.sleep(1_000, stopping.signal);
    }
  }

  async function run(): Promise<void> {
    let failures = 0;
    let fresh = true;
    while (!stopped()) {
      try {
        await relist(fresh);
        fresh = false;
        // An event proves the API works again: the next failure starts the backoff afresh.
        await watchUntilRelist(() => (failures = 0));
      } catch (error) {
        if (stopped()) return;
        failures++;
        // Never a tight loop, not even on a resourceVersion that keeps expiring (a routine event, logged low).
        const delay = backoffDelay(failures, backoff) * (0.5 + random() / 2);
        const expired = error instanceof Expired || httpStatus(error) === 410;
        fresh ||= expired;
        const context = { informer: options.describe, error: describeError(error), retryInMs: Math.round(delay) };
        if (expired) logger.info(context, 'resourceVersion expired; relisting after a pause');
        else {
          logger.warn(context, 'informer failed; relisting after a backoff');
          options.onRestart?.('error', error);
        }
        await clock.sleep(delay, stopping.signal);
      }
    }
  }

  async function watchdog(): Promise<void> {
    const period = Math.min(watchdogMs / 4, 15_000);
    for (;;) {
      await clock.sleep(period, stopping.signal);
      if (stopped()) return;
      const silentFor = clock.monotonic() - lastHeard;
      if (silentFor < watchdogMs || watchdogFiredAt !== undefined) continue;
      watchdogFiredAt = clock.monotonic();
      logger.error(
        { informer: options.describe, silentForMs: Math.round(silentFor) },
        'informer heard nothing for too long; relisting',
      );
      options.onRestart?.('watchdog');
      endSession?.('relist');
    }
  }

  // Ends the watch session in progress, whatever it is doing, so the periodic relist happens even on a busy
  // watch that never closes.
  async function relistTimer(): Promise<void> {
    for (;;) {
      await clock.sleep(relistIntervalMs, stopping.signal);
      if (stopped()) return;
      endSession?.('relist');
    }
  }

  return {
    start() {
      running ??= Promise.all([run(), watchdog(), relistTimer()]).then(() => undefined);
    },
    async stop() {
      stopping.abort();
      endSession?.('closed');
      await running;
    },
    get synced() {
      return synced;
    },
    get alive() {
      return watchdogFiredAt === undefined || clock.monotonic() - watchdogFiredAt < watchdogMs;
    },
    get(key) {
      return store.get(key)?.record;
    },
    *values() {
      for (const entry of store.values()) yield entry.record;
    },
    get size() {
      return store.size;
    },
    refresh(predicate) {
      const earlier = stale;
      stale = earlier === undefined ? predicate : (record) => earlier(record) || predicate(record);
      endSession?.('relist');
    },
  };
}

/** A list response's page, whichever client read it. */
export function listPage<T>(
  items: readonly T[],
  resourceVersion: string | undefined,
  next: string | undefined,
): ListPage<T> {
  return { items, resourceVersion: resourceVersion ?? '', ...(next === undefined ? {} : { continue: next }) };
}

/** What a source's watch asks for: from `resourceVersion`, with bookmarks, on the objects `fieldSelector` picks. */
export interface Selectors {
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
}

export function watchQuery(resourceVersion: string, random: () => number, selectors: Selectors) {
  return {
    resourceVersion,
    allowWatchBookmarks: true,
    // Like client-go, ask the server to end each watch after a random 5-10 minutes, so connections rotate.
    timeoutSeconds: Math.floor(300 * (1 + random())),
    ...selectors,
  };
}
