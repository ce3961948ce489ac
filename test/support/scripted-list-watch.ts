// A list+watch source in memory for the informer's unit tests: one collection that lists in pages, watches,
// and breaks on request, with each open watch in the test's hands.
import assert from 'node:assert/strict';
import type { ListOptions, ListWatchSource, WatchEventType } from '../../src/io/kube/informer.ts';

export interface Obj {
  readonly metadata: { readonly name: string; readonly resourceVersion: string };
  readonly value: string;
}

export interface OpenWatch {
  readonly from: string;
  emit(type: WatchEventType, object: unknown): void;
  close(error?: unknown): void;
  aborted: boolean;
}

/** An API with one collection: lists in pages, watches, and breaks on request. */
export class ScriptedApi implements ListWatchSource<Obj> {
  readonly objects = new Map<string, Obj>();
  version = 100;
  lists = 0;
  failLists = 0;
  hangLists = false;
  /** Awaited before each page is answered (a slow apiserver). */
  listDelay: (() => Promise<void>) | undefined;
  /** What each list asked for. */
  readonly listed: ListOptions[] = [];
  /** Watch starts never answer; each start's signal is recorded in watchStarts. */
  hangWatches = false;
  readonly watchStarts: { aborted: boolean }[] = [];
  readonly watches: OpenWatch[] = [];

  put(name: string, value: string): Obj {
    const object = { metadata: { name, resourceVersion: String(++this.version) }, value };
    this.objects.set(name, object);
    return object;
  }

  async list(options: ListOptions) {
    const { limit, continue: token } = options;
    this.lists++;
    this.listed.push(options);
    if (this.hangLists) return new Promise<never>(() => undefined);
    await this.listDelay?.();
    if (this.failLists > 0) {
      this.failLists--;
      return Promise.reject(new Error('connection refused'));
    }
    const all = [...this.objects.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const start = Number(token ?? 0);
    const next = start + limit < all.length ? String(start + limit) : undefined;
    return Promise.resolve({
      items: all.slice(start, start + limit),
      resourceVersion: String(this.version),
      ...(next === undefined ? {} : { continue: next }),
    });
  }

  watch(
    from: string,
    onEvent: (type: WatchEventType, object: unknown) => void,
    onDone: (error?: unknown) => void,
    signal?: AbortSignal,
  ) {
    const start = { aborted: false };
    this.watchStarts.push(start);
    signal?.addEventListener('abort', () => (start.aborted = true));
    if (this.hangWatches) return new Promise<never>(() => undefined);
    const open: OpenWatch = {
      from,
      aborted: false,
      emit: (type, object) => {
        onEvent(type, object);
      },
      close: (error) => {
        onDone(error);
      },
    };
    this.watches.push(open);
    return Promise.resolve({
      abort: () => {
        open.aborted = true;
      },
    });
  }

  get current(): OpenWatch {
    return this.watches.at(-1) ?? assert.fail('no watch');
  }
}
