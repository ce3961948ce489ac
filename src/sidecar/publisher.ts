// Publishing one target's credential to all of its sinks. Every write and check goes through one queue, so
// a sink never sees two writes at once (a rotation's publish and a watch's repair); the sinks whose last
// write or check failed are kept as stale, and repair passes retry them until they hold the current set.
import type { CredentialBundle } from '../core/kubeconfig/bundle.ts';
import { readCredential, type CredentialFacts } from '../core/credential/credential.ts';
import { describeError } from '../io/kube/errors.ts';
import { RotationError } from './errors.ts';
import type { OutputState, Sink, StoredCredential } from './sinks/sink.ts';

export interface PublisherObserver {
  outputRepaired(sink: Sink, state: Exclude<OutputState, 'current'>): void;
  publishFailed(sink: Sink, message: string): void;
}

export interface PublisherOptions {
  readonly sinks: readonly Sink[];
  /** What the sinks must hold, asked when a write or check runs (never an older set than the current one). */
  readonly bundle: () => CredentialBundle | undefined;
  readonly observer: PublisherObserver;
  /** Called after each pass over the sinks: the set of stale sinks may have changed. */
  readonly settled: () => void;
}

/** The newest complete set found in a sink, and where. */
export interface FoundCredential {
  readonly stored: StoredCredential;
  readonly facts: CredentialFacts;
  readonly from: Sink;
}

export class Publisher {
  readonly #options: PublisherOptions;
  readonly #stale = new Set<Sink>();
  #queue: Promise<void> = Promise.resolve();
  #repairQueued = false;

  constructor(options: PublisherOptions) {
    this.#options = options;
  }

  get sinks(): readonly Sink[] {
    return this.#options.sinks;
  }

  /** Sinks whose last write or check failed, in the order they failed. */
  get stale(): readonly Sink[] {
    return [...this.#stale];
  }

  /** The set with the latest expiry among the sinks (expired ones included); an unreadable sink turns stale. */
  async newest(): Promise<FoundCredential | undefined> {
    let best: FoundCredential | undefined;
    for (const sink of this.#options.sinks) {
      let stored: StoredCredential | undefined;
      try {
        stored = await sink.read();
      } catch (error) {
        this.#stale.add(sink);
        this.#options.observer.publishFailed(sink, `cannot read: ${describeError(error)}`);
        continue;
      }
      if (stored === undefined) continue;
      const facts = readCredential(stored.credential);
      if (best === undefined || facts.notAfter > best.facts.notAfter) best = { stored, facts, from: sink };
    }
    return best;
  }

  /** Output may have changed (a watch fired, the periodic re-read): check every sink and rewrite what differs. */
  repairSoon(): void {
    // One pass waiting is enough: it reads the sinks when it runs, so it sees every change made before.
    if (this.#repairQueued) return;
    this.#repairQueued = true;
    this.#queue = this.#queue.then(async () => {
      this.#repairQueued = false;
      await this.#repair();
    });
  }

  /** Writes the current set to every sink after the queued work; throws only when no sink could take it. */
  async publish(): Promise<void> {
    const result = this.#queue.then(() => this.#writeAll());
    this.#queue = result.then(
      () => undefined,
      () => undefined,
    );
    await result;
  }

  /** Resolves when the queued writes and checks are done. */
  idle(): Promise<void> {
    return this.#queue;
  }

  async #writeAll(): Promise<void> {
    const bundle = this.#options.bundle();
    if (bundle === undefined) return;
    const failures: string[] = [];
    for (const sink of this.#options.sinks) {
      try {
        await sink.write(bundle);
        this.#stale.delete(sink);
      } catch (error) {
        this.#stale.add(sink);
        failures.push(`${sink.description}: ${describeError(error)}`);
        this.#options.observer.publishFailed(sink, describeError(error));
      }
    }
    this.#options.settled();
    if (failures.length === this.#options.sinks.length) {
      throw new RotationError('error', `publishing failed everywhere: ${failures.join('; ')}`);
    }
  }

  async #repair(): Promise<void> {
    const bundle = this.#options.bundle();
    if (bundle !== undefined) for (const sink of this.#options.sinks) await this.#repairSink(sink, bundle);
    this.#options.settled();
  }

  async #repairSink(sink: Sink, bundle: CredentialBundle): Promise<void> {
    const { observer } = this.#options;
    let state: OutputState;
    try {
      state = await sink.check(bundle);
    } catch (error) {
      this.#stale.add(sink);
      observer.publishFailed(sink, `cannot check: ${describeError(error)}`);
      return;
    }
    if (state === 'current') {
      this.#stale.delete(sink);
      return;
    }
    try {
      await sink.write(bundle);
      this.#stale.delete(sink);
      observer.outputRepaired(sink, state);
    } catch (error) {
      this.#stale.add(sink);
      observer.publishFailed(sink, describeError(error));
    }
  }
}
