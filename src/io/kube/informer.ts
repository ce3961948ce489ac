// An informer that keeps going: list (in pages) then watch from the list's resourceVersion, with
// - the watch resumed where it stopped when the server or the client-side inactivity timer closes it;
// - a relist when the resourceVersion is too old (410 Gone), and periodically as a backstop;
// - on any other failure, a relist after a jittered exponential backoff (client-node's own informer stops
//   for good on such errors);
// - a watchdog that forces a relist when nothing has been heard for too long, and reports the informer as
//   not alive if even that does not help, so a liveness probe can restart the process.
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
export interface ListWatchSource<T> {
  list(options: { readonly limit: number; readonly continue?: string }): Promise<ListPage<T>>;
  /**
   * Starts a watch from `resourceVersion`; `onEvent` gets each event and `onDone` is called exactly once when
   * it ends (no error: closed normally or by the inactivity timer). Returns a handle to stop it early.
   */
  watch(
    resourceVersion: string,
    onEvent: (type: WatchEventType, object: unknown) => void,
    onDone: (error?: unknown) => void,
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

type SessionEnd = 'closed' | 'expired' | 'relist';

class Expired extends Error {}

export function createInformer<T, R>(options: InformerOptions<T, R>): Informer<R> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const pageSize = options.pageSize ?? 500;
  const relistIntervalMs = options.relistIntervalMs ?? 10 * 60_000;
  const watchdogMs = options.watchdogMs ?? 3 * 60_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  const backoff = options.backoff ?? { initialMs: 500, maxMs: 30_000 };
  const { logger, handlers } = options;
  const stopping = new AbortController();
  const stopped = () => stopping.signal.aborted;
  let store = new Map<string, { version: string; record: R }>();
  let resourceVersion = '';
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

  async function relist(): Promise<void> {
    const serving = stale;
    const next = new Map<string, { version: string; record: R }>();
    let page: ListPage<T> | undefined;
    do {
      const continueToken = page?.continue;
      page = await withTimeout(
        options.source.list({ limit: pageSize, ...(continueToken === undefined ? {} : { continue: continueToken }) }),
        'list',
      );
      if (stopped()) return;
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

  /** One watch connection, until it ends; rejects on failures that need a backoff. */
  function watchSession(onConnected: () => void): Promise<SessionEnd> {
    return new Promise<SessionEnd>((resolve, reject) => {
      let handle: { abort(): void } | undefined;
      let finished = false;
      const finish = (end: SessionEnd | Error) => {
        if (finished) return;
        finished = true;
        endSession = undefined;
        handle?.abort();
        if (end instanceof Expired) resolve('expired');
        else if (end instanceof Error) reject(end);
        else resolve(end);
      };
      endSession = finish;
      const onEvent = (type: WatchEventType, object: unknown) => {
        if (finished) return;
        try {
          apply(type, object);
        } catch (error) {
          finish(error instanceof Error ? error : new Error(String(error)));
        }
      };
      const onDone = (error?: unknown) => {
        if (error === undefined || error === null || (error instanceof Error && error.name === 'TimeoutError'))
          finish('closed');
        else if (httpStatus(error) === 410 || (error as { statusCode?: unknown }).statusCode === 410) finish('expired');
        else finish(new Error(`watch failed: ${describeError(error)}`, { cause: error }));
      };
      options.source.watch(resourceVersion, onEvent, onDone).then(
        (started) => {
          handle = started;
          if (finished) {
            started.abort();
            return;
          }
          heard();
          onConnected();
        },
        (error: unknown) => {
          finish(new Error(`watch could not start: ${describeError(error)}`, { cause: error }));
        },
      );
    });
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (!stopped()) {
      try {
        await relist();
        for (;;) {
          if (stopped()) return;
          if (stale !== undefined) break;
          const startedAt = clock.monotonic();
          // A watch that connects proves the API works again: the next failure starts the backoff afresh.
          const end = await watchSession(() => (failures = 0));
          if (end !== 'closed') break;
          // A watch that the server closes at once, again and again, must not spin.
          if (clock.monotonic() - startedAt < 1_000) await clock.sleep(1_000, stopping.signal);
        }
      } catch (error) {
        if (stopped()) return;
        failures++;
        const delay = backoffDelay(failures, backoff) * (0.5 + random() / 2);
        logger.warn(
          { informer: options.describe, error: describeError(error), retryInMs: Math.round(delay) },
          'informer failed; relisting after a backoff',
        );
        options.onRestart?.('error', error);
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
