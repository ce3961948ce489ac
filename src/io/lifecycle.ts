// Shutdown on SIGTERM or SIGINT: the first signal starts a graceful stop; a second one exits at once.
export interface ShutdownSignal {
  /** Resolves with the signal's name when the first one arrives. */
  readonly received: Promise<NodeJS.Signals>;
  /** Aborted when the first signal arrives, for APIs that take an AbortSignal. */
  readonly abort: AbortSignal;
  dispose(): void;
}

export function shutdownSignal(): ShutdownSignal {
  const controller = new AbortController();
  let resolve: (signal: NodeJS.Signals) => void = () => undefined;
  const received = new Promise<NodeJS.Signals>((done) => (resolve = done));
  const handler = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    controller.abort(new Error(`received ${signal}`));
    resolve(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return {
    received,
    abort: controller.signal,
    dispose: () => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
    },
  };
}

/** Resolves when `signal` aborts (at once if it already has): a long-running command's main wait. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else
      signal.addEventListener(
        'abort',
        () => {
          resolve();
        },
        { once: true },
      );
  });
}
