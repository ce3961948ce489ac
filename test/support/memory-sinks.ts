// Sinks in memory for the rotation loop's and the publisher's unit tests: one that holds what it was given,
// one whose writes wait for the test, one whose next writes fail.
import type { CredentialBundle } from '../../src/core/kubeconfig/bundle.ts';
import type { OutputState, Sink, StoredCredential } from '../../src/sidecar/sinks/sink.ts';

export class MemorySink implements Sink {
  readonly kind = 'directory';
  readonly description: string;
  stored: CredentialBundle | undefined;
  writes = 0;

  constructor(description = 'memory') {
    this.description = description;
  }

  read(): Promise<StoredCredential | undefined> {
    return Promise.resolve(this.stored);
  }

  check(bundle: CredentialBundle): Promise<OutputState> {
    if (this.stored === undefined) return Promise.resolve('missing');
    return Promise.resolve(JSON.stringify(this.stored) === JSON.stringify(bundle) ? 'current' : 'damaged');
  }

  write(bundle: CredentialBundle): Promise<void> {
    this.stored = bundle;
    this.writes++;
    return Promise.resolve();
  }

  /** What it holds now (read through a method: tests change `stored` behind the loop's back). */
  current(): CredentialBundle | undefined {
    return this.stored;
  }

  /** The last watch's callback: a test calls it to say the output changed. */
  onChange: (() => void) | undefined;

  watch(onChange: () => void): Promise<{ close(): Promise<void> }> {
    this.onChange = onChange;
    return Promise.resolve({ close: () => Promise.resolve() });
  }
}

/** A sink whose writes wait until the test releases them, counting how many run at once. */
export class GatedSink extends MemorySink {
  active = 0;
  mostActive = 0;
  #waiting: (() => void)[] = [];

  override async write(bundle: CredentialBundle): Promise<void> {
    this.active++;
    this.mostActive = Math.max(this.mostActive, this.active);
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.active--;
    await super.write(bundle);
  }

  /** Writes held at the gate now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  release(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

/** A sink whose next `failWrites` writes (and `failChecks` checks, `failReads` reads) fail. */
export class FailingSink extends MemorySink {
  failWrites = 0;
  failChecks = 0;
  failReads = 0;

  override read(): Promise<StoredCredential | undefined> {
    if (this.failReads === 0) return super.read();
    this.failReads--;
    return Promise.reject(new Error('permission denied'));
  }

  override check(bundle: CredentialBundle): Promise<OutputState> {
    if (this.failChecks === 0) return super.check(bundle);
    this.failChecks--;
    return Promise.reject(new Error('input/output error'));
  }

  override write(bundle: CredentialBundle): Promise<void> {
    if (this.failWrites === 0) return super.write(bundle);
    this.failWrites--;
    return Promise.reject(new Error('read-only file system'));
  }
}
