// Follow one object by name with list + watch: the list gives the current state and a resourceVersion,
// the watch continues from there. A watch that ends cleanly is resumed from the last version seen; an
// expired version (410) starts over with a list at once, an error after a jittered backoff that grows while
// the API keeps failing (many targets waiting must not poll a struggling apiserver every second). Ends when
// the signal aborts.
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, type Backoff } from '../../core/backoff.ts';

export type WatchEventType = 'LIST' | 'ADDED' | 'MODIFIED' | 'DELETED';

export interface KubeObject {
  metadata?: { name?: string; resourceVersion?: string; uid?: string };
}

export interface ObjectWatchOptions<T extends KubeObject> {
  readonly kubeConfig: KubeConfig;
  /** Lists the object, e.g. with fieldSelector metadata.name=NAME. */
  list(): Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
  /** Collection path to watch, e.g. /api/v1/namespaces/NS/secrets. */
  readonly watchPath: string;
  readonly name: string;
  readonly signal: AbortSignal;
  /** The object's state after each list and event; undefined when it does not exist. */
  onState(object: T | undefined, event: WatchEventType): void;
  /** A list or watch failed; the watch starts over after a backoff. */
  onError?(error: unknown): void;
  readonly backoff?: Backoff;
}

const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 30_000 };

// Servers end a watch after this; the client library gives up after 30 s of silence, so stay below that.
const WATCH_TIMEOUT_SECONDS = 25;

class ExpiredVersion extends Error {}

export async function watchObject<T extends KubeObject>(options: ObjectWatchOptions<T>): Promise<void> {
  const watcher = new Watch(options.kubeConfig);
  const aborted = () => options.signal.aborted;
  let failures = 0;
  while (!aborted()) {
    try {
      const listed = await options.list();
      failures = 0;
      let version = listed.metadata?.resourceVersion ?? '';
      options.onState(
        listed.items.find((item) => item.metadata?.name === options.name),
        'LIST',
      );
      while (!aborted()) version = await watchOnce(watcher, options, version);
    } catch (error) {
      if (aborted()) break;
      if (error instanceof ExpiredVersion) continue;
      options.onError?.(error);
      const delay = backoffDelay(++failures, options.backoff ?? DEFAULT_BACKOFF) * (0.5 + Math.random() / 2);
      await sleep(delay, undefined, { signal: options.signal }).catch(() => undefined);
    }
  }
}

/** One watch request; resolves with the last resourceVersion seen when the server ends it cleanly. */
function watchOnce<T extends KubeObject>(
  watcher: Watch,
  options: ObjectWatchOptions<T>,
  from: string,
): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let version = from;
    let controller: AbortController | undefined;
    const abort = () => controller?.abort();
    options.signal.addEventListener('abort', abort, { once: true });
    const finish = (error: unknown) => {
      options.signal.removeEventListener('abort', abort);
      if (error === null || error === undefined || options.signal.aborted) resolve(version);
      else reject(error instanceof Error ? error : new Error(`watch of ${options.name} failed`, { cause: error }));
    };
    watcher
      .watch(
        options.watchPath,
        {
          fieldSelector: `metadata.name=${options.name}`,
          resourceVersion: version,
          allowWatchBookmarks: true,
          timeoutSeconds: WATCH_TIMEOUT_SECONDS,
        },
        (type: string, object: T & { code?: number }) => {
          if (type === 'ERROR') {
            // A Status object: 410 Gone means our version is too old to resume from.
            controller?.abort();
            finish(
              object.code === 410
                ? new ExpiredVersion('resource version expired')
                : new Error(`watch error ${String(object.code)}`),
            );
            return;
          }
          version = object.metadata?.resourceVersion ?? version;
          if (type === 'BOOKMARK') return;
          options.onState(type === 'DELETED' ? undefined : object, type as WatchEventType);
        },
        finish,
      )
      .then((started) => {
        controller = started;
        if (options.signal.aborted) started.abort();
      }, finish);
  });
}
