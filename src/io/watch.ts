// Watching directories for changes that come in bursts (a mounted ConfigMap or Secret changes by swapping
// its ..data symlink: several events at once), with one call per burst once it has been quiet a moment.
// Directories, not files, are watched, and symlinks are not followed, so such a swap is seen.
import { watch } from 'chokidar';

export interface DebouncedWatchOptions {
  /** How deep below each path: 0 for its entries, 1 for theirs too. */
  readonly depth: number;
  readonly debounceMs: number;
  /** A watcher error (the directory vanished, say); ignored by default, as callers re-read periodically. */
  readonly onError?: (error: unknown) => void;
}

export interface DebouncedWatch {
  /** Resolves once the initial scan is done: a change after that is seen. */
  readonly ready: Promise<void>;
  /** Schedules a call as a change would (for a periodic re-read that shares the debounce). */
  trigger(): void;
  /** Clears a scheduled call and stops watching: no call happens after it resolves. */
  close(): Promise<void>;
}

export function watchDebounced(
  paths: string | readonly string[],
  options: DebouncedWatchOptions,
  onChange: () => void,
): DebouncedWatch {
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const trigger = () => {
    // An event the watcher delivers while it closes must not schedule a call after close.
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, options.debounceMs);
  };
  const watcher = watch(typeof paths === 'string' ? paths : [...paths], {
    depth: options.depth,
    ignoreInitial: true,
    followSymlinks: false,
  })
    .on('all', trigger)
    .on('error', options.onError ?? (() => undefined));
  const ready = new Promise<void>((resolve) => watcher.once('ready', resolve));
  return {
    ready,
    trigger,
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await watcher.close();
    },
  };
}
