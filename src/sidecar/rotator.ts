// One target's rotation loop: keep a valid certificate for the configured identity published in every sink,
// renew it on schedule, and retry failures with backoff while the current certificate stays in place. The
// loop may wait minutes for an approval; publishing and repairing outputs (which must answer a deleted file
// within seconds) run beside it, in the Publisher's queue.
import { credentialKindOf, type TargetConfig } from '../core/config/sidecar.ts';
import { readCredential, type Credential, type CredentialFacts } from '../core/credential/credential.ts';
import type { CredentialRules } from '../core/credential/rules.ts';
import type { CredentialBundle } from '../core/kubeconfig/bundle.ts';
import { afterFailure, nextDue, readiness, type DueState, type Held } from '../core/rotation/decisions.ts';
import {
  jitterFromSerial,
  retryDelay,
  rotationDeadline,
  type AuthChoice,
  type Obtained,
} from '../core/rotation/schedule.ts';
import type { Clock } from '../io/clock.ts';
import { describeError } from '../io/kube/errors.ts';
import type { KubeClient } from '../io/kube/rest.ts';
import type { BootstrapCredential } from './bootstrap-credential.ts';
import type { Connect, Endpoint } from './connect.ts';
import { classify, type CredentialIssuer } from './issuer.ts';
import { RotationError, type RotationResult } from './errors.ts';
import { Publisher, type PublisherObserver } from './publisher.ts';
import type { RestartObserver, WorkloadRestarter } from './restarter.ts';
import type { Sink } from './sinks/sink.ts';

export interface CurrentCredential extends Held {
  readonly credential: Credential;
}

export interface TargetObserver extends PublisherObserver, RestartObserver {
  loaded(current: CurrentCredential, from: string): void;
  rotated(event: {
    current: CurrentCredential;
    auth: AuthChoice;
    request: string;
    durationMs: number;
    timings: Record<string, number>;
  }): void;
  rotationFailed(event: {
    result: Exclude<RotationResult, 'success'>;
    message: string;
    auth: AuthChoice;
    failures: number;
    retryAt: number;
  }): void;
  rebootstrapNeeded(needed: boolean, message: string): void;
  /** The periodic check found the target refusing the current credential (revoked). */
  currentRefused(message: string): void;
  readinessChanged(ready: boolean, detail: string): void;
}

export interface TargetDependencies {
  readonly config: TargetConfig;
  readonly sinks: readonly Sink[];
  readonly issuer: CredentialIssuer;
  /** The bootstrap kubeconfig as last read; undefined when missing. */
  readonly bootstrap: () => BootstrapCredential | undefined;
  /** What the credential must be: its kind's checks (identity, key type, signer CA, lease binding). */
  readonly rules: CredentialRules;
  readonly clock: Clock;
  /** Uniform in [0, 1): the jitter of retry delays. */
  readonly random: () => number;
  readonly observer: TargetObserver;
  /** The target's API as a credential (run.ts passes connectTarget); each client is closed after one use. */
  readonly connect: Connect;
  /** Called after each step of a rotation (traced in logs; the crash-consistency test kills at each). */
  readonly onStep?: (step: string) => void;
  /** The restart action: told of every rotation published (not of repairs, nor of a certificate loaded at start). */
  readonly restarter?: Pick<WorkloadRestarter, 'request' | 'run'>;
}

export interface TargetStatus {
  readonly name: string;
  readonly ready: boolean;
  readonly detail: string;
  readonly current?: CurrentCredential;
}

export class TargetRotator {
  readonly #deps: TargetDependencies;
  #current: CurrentCredential | undefined;
  #server: string | undefined;
  #caPem: string | undefined;
  #tlsServerName: string | undefined;
  #failures = 0;
  /** The result of the last failed attempt, until one succeeds. */
  #lastFailure: RotationResult | undefined;
  #retryAt = 0;
  #rebootstrapNeeded = false;
  #ready = false;
  #readyDetail = 'starting';
  readonly #publisher: Publisher;
  #wake: AbortController = new AbortController();
  /** The target answered 401/403 to the current credential: revoked (a token's lease Secret deleted). */
  #currentRefused = false;
  /** When the target last said it accepts the current credential (the issuer's acceptance check). */
  #acceptedAt = 0;
  /** When the last rotation whose workloads are still to be restarted was published. */
  #restartOwed: number | undefined;

  constructor(deps: TargetDependencies) {
    this.#deps = deps;
    this.#publisher = new Publisher({
      sinks: deps.sinks,
      bundle: () => (this.#current === undefined ? undefined : this.#bundle(this.#current)),
      observer: deps.observer,
      settled: () => {
        this.#updateReadiness();
        this.#restartWhenPublished();
      },
    });
  }

  get name(): string {
    return this.#deps.config.name;
  }

  get #kind(): string {
    return credentialKindOf(this.#deps.config);
  }

  sinks(): readonly Sink[] {
    return this.#deps.sinks;
  }

  /** Readiness is computed on demand, so an expiry shows at once, not at the next event. */
  status(): TargetStatus {
    this.#updateReadiness();
    return {
      name: this.name,
      ready: this.#ready,
      detail: this.#readyDetail,
      ...(this.#current === undefined ? {} : { current: this.#current }),
    };
  }

  /** Output may have changed (a watch fired, the periodic re-read): check the sinks soon. */
  checkOutputs(): void {
    this.#publisher.repairSoon();
  }

  /** The bootstrap credential changed: a failing target retries now instead of waiting out its backoff. */
  bootstrapChanged(): void {
    if (this.#failures > 0) {
      this.#retryAt = 0;
      this.#wake.abort();
    }
  }

  /** Runs until the signal aborts; in-flight publishing finishes first, so no output is left half-written. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#rotateUntil(signal), this.#deps.restarter?.run(signal)]);
  }

  async #rotateUntil(signal: AbortSignal): Promise<void> {
    await this.#load();
    while (!signal.aborted) {
      const deadline = await this.#step(signal);
      if (deadline !== undefined) await this.#sleep(deadline - this.#deps.clock.now(), signal);
    }
    await this.#publisher.idle();
  }

  /** Runs until every sink holds a valid certificate, or fails (for --once). */
  async once(signal: AbortSignal): Promise<void> {
    await this.#load();
    let publishRetries = 0;
    for (;;) {
      if (this.#ready) return;
      if (signal.aborted) throw new Error(`${this.name}: interrupted before a valid ${this.#kind} was published`);
      const deadline = await this.#step(signal);
      if (deadline !== undefined) {
        // A valid certificate that some sink lacks: retry publishing with backoff, not wait for the renewal.
        publishRetries++;
        await this.#republishAfter(retryDelay(publishRetries, this.#deps.random()), signal);
      }
      await this.#publisher.idle();
    }
  }

  async #republishAfter(ms: number, signal: AbortSignal): Promise<void> {
    await this.#sleep(ms, signal);
    if (!signal.aborted) this.checkOutputs();
  }

  /** Does what is due (after any backoff); returns when to look again when nothing is due yet. */
  async #step(signal: AbortSignal): Promise<number | undefined> {
    const now = this.#deps.clock.now();
    const due = nextDue(await this.#dueState(), now);
    switch (due.step) {
      case 'wait':
        return due.until;
      case 'check-accepted':
        await this.#checkAccepted();
        break;
      case 'back-off':
        await this.#sleep(due.until - now, signal);
        break;
      default:
        await this.#rotate(due.step === 'renew' ? 'current' : 'bootstrap', signal);
    }
    return undefined;
  }

  async #dueState(): Promise<DueState> {
    const { acceptance } = this.#deps.issuer;
    const pending = await this.#deps.issuer.hasPending();
    return {
      current: this.#current,
      refused: this.#currentRefused,
      retryAt: this.#retryAt,
      pending,
      ...(acceptance === undefined
        ? {}
        : { acceptance: { intervalMs: acceptance.intervalMs, checkedAt: this.#acceptedAt } }),
    };
  }

  /** A refusal marks the current credential refused (the next step renews with the bootstrap one). */
  async #checkAccepted(): Promise<void> {
    const current = this.#current;
    const { acceptance } = this.#deps.issuer;
    if (current === undefined || acceptance === undefined) return;
    const { clock, observer } = this.#deps;
    const endpoint = this.#endpoint();
    this.#acceptedAt = clock.now();
    if (endpoint === undefined) return;
    try {
      await withClient(this.#deps.connect(endpoint, current.credential), (client) => acceptance.check(client));
    } catch (caught) {
      const error = classify(caught, `checking ${this.name}'s current ${this.#kind}`);
      // Unreachable or failing: the renewal's own retries deal with that; only a refusal means revoked.
      if (error.result !== 'unauthorized') return;
      this.#currentRefused = true;
      observer.currentRefused(error.message);
      this.#updateReadiness();
    }
  }

  async #sleep(ms: number, signal: AbortSignal): Promise<void> {
    this.#wake = new AbortController();
    await this.#deps.clock.sleep(Math.max(0, ms), AbortSignal.any([signal, this.#wake.signal]));
  }

  /** The newest valid set among the sinks becomes current; sinks holding anything else are rewritten. */
  async #load(): Promise<void> {
    const now = this.#deps.clock.now();
    const best = await this.#publisher.newest();
    if (best !== undefined) {
      if (this.#server === undefined) {
        this.#server = best.stored.server;
        this.#tlsServerName = best.stored.tlsServerName;
      }
      this.#caPem ??= best.stored.caPem;
      this.#current = this.#currentFrom(best.stored.credential, best.facts, { at: now, issued: false });
      this.#deps.observer.loaded(this.#current, best.from.description);
    }
    // Through the publisher's queue: the sinks' watches already run, and two writes at once would race.
    this.checkOutputs();
    await this.#publisher.idle();
  }

  #currentFrom(credential: Credential, facts: CredentialFacts, obtained: Obtained): CurrentCredential {
    const { config, rules } = this.#deps;
    const fitsConfig = rules.fits(credential);
    const deadline = fitsConfig
      ? rotationDeadline(facts, obtained, config.rotation, jitterFromSerial(facts.serial))
      : obtained.at;
    return { credential, facts, obtainedAt: obtained.at, deadline, fitsConfig };
  }

  /**
   * Server, CA and TLS server name: configured server first, then the bootstrap kubeconfig, then what was
   * published last. The name goes with the CA: every client and kubeconfig of the target checks the
   * certificate against it, or none could reach a target known by an address its certificate does not name.
   */
  #endpoint(): Endpoint | undefined {
    const bootstrap = this.#deps.bootstrap();
    const server = this.#deps.config.server ?? bootstrap?.server ?? this.#server;
    const caPem = bootstrap?.caPem ?? this.#caPem;
    if (server === undefined || caPem === undefined) return undefined;
    this.#server = server;
    this.#caPem = caPem;
    if (bootstrap !== undefined) this.#tlsServerName = bootstrap.config.tlsServerName;
    return { server, caPem, ...(this.#tlsServerName === undefined ? {} : { tlsServerName: this.#tlsServerName }) };
  }

  async #rotate(auth: AuthChoice, signal: AbortSignal): Promise<void> {
    const { clock, config, issuer, observer } = this.#deps;
    const began = clock.monotonic();
    const current = this.#current;
    try {
      const endpoint = this.#endpoint();
      if (endpoint === undefined) {
        throw new RotationError(
          'unauthorized',
          `no server and CA known for ${config.name}: the bootstrap kubeconfig ${config.bootstrapKubeconfig} is missing`,
        );
      }
      const issued = await withClient(this.#connect(auth, endpoint, current), (client) =>
        issuer.obtain(client, signal),
      );
      const facts = this.#checkIssued(issued.credential);
      this.#deps.onStep?.('certificate-checked');
      const publishStarted = clock.monotonic();
      const next = this.#currentFrom(issued.credential, facts, { at: clock.now(), issued: true });
      this.#current = next;
      this.#currentRefused = false;
      // Before publishing, so that the readiness it computes reflects the new credential.
      if (this.#rebootstrapNeeded) {
        this.#rebootstrapNeeded = false;
        observer.rebootstrapNeeded(false, `a ${this.#kind} was obtained`);
      }
      await this.#publisher.publish();
      this.#deps.onStep?.('published');
      await issuer.finish();
      this.#deps.onStep?.('pending-cleared');
      this.#failures = 0;
      this.#lastFailure = undefined;
      this.#retryAt = 0;
      observer.rotated({
        current: next,
        auth,
        request: issued.request,
        durationMs: clock.monotonic() - began,
        timings: { ...issued.timings, publish: clock.monotonic() - publishStarted },
      });
      this.#restartOwed = clock.now();
      this.#restartWhenPublished();
    } catch (caught) {
      if (signal.aborted) return;
      const error = classify(caught, `rotating ${config.name}`);
      if (error.requestFinished) await issuer.finish();
      this.#failed(auth, error, current);
    }
  }

  /** `current` is what the attempt started with (a credential obtained but not published is not counted). */
  #failed(auth: AuthChoice, error: RotationError, current: CurrentCredential | undefined): void {
    const { clock, observer } = this.#deps;
    const after = afterFailure(
      {
        current,
        refused: this.#currentRefused,
        retryAt: this.#retryAt,
        failures: this.#failures,
        lastFailure: this.#lastFailure,
        rebootstrapNeeded: this.#rebootstrapNeeded,
      },
      { result: error.result, auth },
      clock.now(),
      this.#deps.random(),
    );
    this.#failures = after.failures;
    this.#lastFailure = error.result;
    this.#currentRefused = after.refused;
    this.#retryAt = after.retryAt;
    observer.rotationFailed({
      result: error.result,
      message: error.message,
      auth,
      failures: after.failures,
      retryAt: after.retryAt,
    });
    if (after.reportRebootstrap) {
      this.#rebootstrapNeeded = true;
      observer.rebootstrapNeeded(
        true,
        `no valid ${this.#kind} the target accepts, and the bootstrap credential is not accepted: ${error.message}`,
      );
    }
    this.#updateReadiness();
  }

  #connect(auth: AuthChoice, endpoint: Endpoint, current: CurrentCredential | undefined): KubeClient {
    if (auth === 'current' && current !== undefined) return this.#deps.connect(endpoint, current.credential);
    const bootstrap = this.#deps.bootstrap();
    if (bootstrap === undefined) {
      throw new RotationError(
        'unauthorized',
        `no valid ${this.#kind} and no bootstrap kubeconfig at ${this.#deps.config.bootstrapKubeconfig}`,
      );
    }
    return this.#deps.connect(endpoint, bootstrap);
  }

  #checkIssued(credential: Credential): CredentialFacts {
    const { clock, rules } = this.#deps;
    let facts: CredentialFacts;
    let problems: string[];
    try {
      facts = readCredential(credential);
      problems = rules.problems(credential, clock.now());
    } catch (error) {
      throw new RotationError('rejected', `the issued ${this.#kind} cannot be read: ${describeError(error)}`, {
        cause: error,
        requestFinished: true,
      });
    }
    if (problems.length > 0) {
      throw new RotationError('rejected', `the issued ${this.#kind} was not used: ${problems.join('; ')}`, {
        requestFinished: true,
      });
    }
    return facts;
  }

  #bundle(current: CurrentCredential): CredentialBundle | undefined {
    const endpoint = this.#endpoint();
    if (endpoint === undefined) return undefined;
    return {
      name: this.name,
      server: endpoint.server,
      caPem: endpoint.caPem,
      ...(endpoint.tlsServerName === undefined ? {} : { tlsServerName: endpoint.tlsServerName }),
      credential: current.credential,
      nextRotation: current.deadline,
    };
  }

  /** Workloads restart only once every sink holds the new certificate: a sink that failed is repaired first. */
  #restartWhenPublished(): void {
    if (this.#restartOwed === undefined || this.#publisher.stale.length > 0) return;
    this.#deps.restarter?.request(this.#restartOwed);
    this.#restartOwed = undefined;
  }

  #updateReadiness(): void {
    const { config } = this.#deps;
    const { ready, detail } = readiness(
      {
        kind: credentialKindOf(config),
        bootstrapWith: config.credential === 'certificate' ? (config.bootstrap?.with ?? 'token') : 'token',
        current: this.#current,
        refused: this.#currentRefused,
        rebootstrapNeeded: this.#rebootstrapNeeded,
        stale: this.#publisher.stale.map((sink) => sink.description),
      },
      this.#deps.clock.now(),
    );
    if (ready === this.#ready && detail === this.#readyDetail) return;
    const changed = ready !== this.#ready;
    this.#ready = ready;
    this.#readyDetail = detail;
    if (changed) this.#deps.observer.readinessChanged(ready, detail);
  }
}

/** A client for one use: its connections are closed when `use` is done (the next rotation is hours away). */
async function withClient<T>(client: KubeClient, use: (client: KubeClient) => Promise<T>): Promise<T> {
  try {
    return await use(client);
  } finally {
    await client.close();
  }
}
