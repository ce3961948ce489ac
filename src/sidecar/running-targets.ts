// The set of running targets: starting one (its loop and the watches of its sinks), stopping one, and
// applying a config change (targets added, removed or changed are started, stopped or restarted), one change
// after another, so a reload never starts a target twice or races a stop.
import type { SidecarConfig, TargetConfig } from '../core/config/sidecar.ts';
import { describeError } from '../io/kube/errors.ts';
import type { Logger } from '../io/log.ts';
import type { TargetRotator } from './rotator.ts';

/** What the set needs of a target's rotator. */
export type ManagedTarget = Pick<
  TargetRotator,
  'name' | 'sinks' | 'run' | 'status' | 'checkOutputs' | 'bootstrapChanged'
>;

export interface RunningTargetsOptions {
  readonly create: (config: TargetConfig) => ManagedTarget;
  /** Aborted at shutdown: every loop stops, and no change still queued starts anything. */
  readonly signal: AbortSignal;
  readonly logger: Pick<Logger, 'error'>;
  /** A loop ended with an error (a bug: rotation failures are retried inside it). */
  readonly crashed: () => void;
}

interface Running {
  readonly rotator: ManagedTarget;
  readonly stop: AbortController;
  readonly done: Promise<void>;
  readonly watches: readonly { close(): Promise<void> }[];
}

export interface ConfigChange {
  /** Targets added, removed or changed in any field. */
  readonly targets: readonly string[];
  /** A field outside `targets` changed. */
  readonly global: boolean;
}

/** What differs between two configs, target by target (in the order: before's, then the new ones). */
export function configChange(before: SidecarConfig, after: SidecarConfig): ConfigChange {
  const fields = (config: SidecarConfig) =>
    new Map(config.targets.map((target) => [target.name, JSON.stringify(target)]));
  const old = fields(before);
  const next = fields(after);
  const targets = [...new Set([...old.keys(), ...next.keys()])].filter((name) => old.get(name) !== next.get(name));
  const global = JSON.stringify({ ...before, targets: [] }) !== JSON.stringify({ ...after, targets: [] });
  return { targets, global };
}

export class RunningTargets {
  readonly #options: RunningTargetsOptions;
  readonly #running = new Map<string, Running>();
  /** Config changes being applied, in order. */
  #changes: Promise<void> = Promise.resolve();

  constructor(options: RunningTargetsOptions) {
    this.#options = options;
  }

  get names(): readonly string[] {
    return [...this.#running.keys()];
  }

  rotator(name: string): ManagedTarget | undefined {
    return this.#running.get(name)?.rotator;
  }

  rotators(): readonly ManagedTarget[] {
    return [...this.#running.values()].map((running) => running.rotator);
  }

  /** Ready when there is at least one target and every one is ready; the details say each one's state. */
  readiness(): { ready: boolean; details: string[] } {
    const statuses = this.rotators().map((rotator) => rotator.status());
    return {
      ready: statuses.length > 0 && statuses.every((status) => status.ready),
      details: statuses.map((status) => `${status.name}: ${status.ready ? 'ready' : 'not ready'}: ${status.detail}`),
    };
  }

  /** Starts a target: its sinks' watches first, so no change made while it loads goes unseen. */
  async start(config: TargetConfig): Promise<void> {
    const { create, signal, logger, crashed } = this.#options;
    const rotator = create(config);
    const stop = new AbortController();
    const watches = await Promise.all(
      rotator.sinks().map((sink) =>
        sink.watch(() => {
          rotator.checkOutputs();
        }),
      ),
    );
    const done = rotator.run(AbortSignal.any([stop.signal, signal])).catch((error: unknown) => {
      crashed();
      logger.error(
        { target: config.name, error: describeError(error) },
        'target loop stopped unexpectedly; /healthz now fails',
      );
    });
    this.#running.set(config.name, { rotator, stop, done, watches });
  }

  /** Stops a target's loop (letting a write in progress finish), then its watches. */
  async stop(name: string): Promise<void> {
    const running = this.#running.get(name);
    if (running === undefined) return;
    this.#running.delete(name);
    running.stop.abort();
    await running.done;
    await Promise.all(running.watches.map((watch) => watch.close()));
  }

  /** Restarts, starts or stops the named targets as `targets` has them, after the changes queued before. */
  apply(names: readonly string[], targets: readonly TargetConfig[]): void {
    this.#changes = this.#changes.then(async () => {
      for (const name of names) {
        await this.stop(name);
        const config = targets.find((target) => target.name === name);
        if (config === undefined || this.#options.signal.aborted) continue;
        await this.start(config).catch((error: unknown) => {
          this.#options.logger.error({ target: name, error: describeError(error) }, 'could not start target');
        });
      }
    });
  }

  /** Waits for queued changes, then stops every target. */
  async stopAll(): Promise<void> {
    await this.#changes;
    await Promise.all(this.names.map((name) => this.stop(name)));
  }
}
