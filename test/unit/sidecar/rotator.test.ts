// The rotation loop without a cluster: a manual clock, a random source, an issuer whose certificates come
// from an openssl CA, and sinks in memory. Checks the schedule, the credential each request is made with,
// backoff, re-bootstrap and output repair exactly.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { targetSchema } from '../../../src/core/config/sidecar.ts';
import { certificateRules } from '../../../src/core/credential/rules.ts';
import { readCertificate } from '../../../src/core/pki/certificate.ts';
import { buildCertificationRequest } from '../../../src/core/pki/csr.ts';
import { generateKeyPair } from '../../../src/core/pki/keys.ts';
import type { Clock } from '../../../src/io/clock.ts';
import { clientConfigFor } from '../../../src/core/kubeconfig/client-config.ts';
import { kubeCredentials } from '../../../src/io/kube/credentials.ts';
import { createKubeClient, type KubeClient } from '../../../src/io/kube/rest.ts';
import { untilAborted } from '../../../src/io/lifecycle.ts';
import type { BootstrapCredential } from '../../../src/sidecar/bootstrap-credential.ts';
import { resolveTarget } from '../../../src/sidecar/config.ts';
import type { CredentialIssuer, IssuedCredential } from '../../../src/sidecar/issuer.ts';
import { RotationError } from '../../../src/sidecar/errors.ts';
import { TargetRotator, type TargetObserver } from '../../../src/sidecar/rotator.ts';
import { connectTarget } from '../../../src/sidecar/connect.ts';
import { certPemOf } from '../../support/credential-bundle.ts';
import { ManualClock, settle } from '../../support/manual-clock.ts';
import { FailingSink, GatedSink, MemorySink } from '../../support/memory-sinks.ts';
import { opensslCa } from '../../support/openssl-ca.ts';
import { drip, hostileServer } from '../../support/hostile-server.ts';
import { eventually } from '../../support/kube.ts';

const ca = opensslCa('target-ca');
after(() => {
  ca.dispose();
});

const config = resolveTarget(
  targetSchema.parse({
    name: 'east',
    bootstrapKubeconfig: '/bootstrap/kubeconfig',
    identity: { commonName: 'agent-a', organizations: ['agents'] },
    sinks: { directory: { path: '/out' } },
  }),
  {},
);
const endpoint = { server: 'https://east.example:6443', caPem: ca.certPem };

type Outcome = 'issue' | RotationError;

class ScriptedIssuer implements CredentialIssuer {
  readonly outcomes: Outcome[] = [];
  readonly #clock: Clock;

  /** How long certificates live from the manual clock's now (a day, unless a test plays a stingy signer). */
  lifetimeMs = 86_400_000;

  /** Certificates are backdated 5 minutes, as kube-controller-manager issues them. */
  constructor(clock: Clock) {
    this.#clock = clock;
  }
  readonly calls: ('token' | 'certificate')[] = [];
  pending = false;
  /** Set by a test: the revocation check, answering from `refusals` (accepted when empty). */
  acceptance?: CredentialIssuer['acceptance'];
  readonly checks: number[] = [];
  readonly refusals: RotationError[] = [];
  /** The TLS server name of every client the loop gave the issuer (obtain and acceptance checks). */
  readonly serverNames: (string | undefined)[] = [];

  acceptEvery(intervalMs: number): void {
    this.acceptance = {
      intervalMs,
      check: (client) => {
        this.serverNames.push(client.config.tlsServerName);
        this.checks.push(this.#clock.now());
        const refusal = this.refusals.shift();
        return refusal === undefined ? Promise.resolve() : Promise.reject(refusal);
      },
    };
  }

  hasPending(): Promise<boolean> {
    return Promise.resolve(this.pending);
  }

  finish(): Promise<void> {
    this.pending = false;
    return Promise.resolve();
  }

  /** Set by a test: a call each obtain makes first, with the loop's signal (a request to a real server). */
  callFirst: ((signal: AbortSignal) => Promise<unknown>) | undefined;

  async obtain(client: KubeClient, signal?: AbortSignal): Promise<IssuedCredential> {
    this.serverNames.push(client.config.tlsServerName);
    this.calls.push(client.config.user.token === undefined ? 'certificate' : 'token');
    if (this.callFirst !== undefined && signal !== undefined) await this.callFirst(signal);
    return this.#issue();
  }

  #issue(): Promise<IssuedCredential> {
    const outcome = this.outcomes.shift() ?? 'issue';
    if (outcome !== 'issue') return Promise.reject(outcome);
    const keys = generateKeyPair('ecdsa-p256');
    const now = this.#clock.now();
    const certPem = ca.sign(buildCertificationRequest({ commonName: 'agent-a', organizations: ['agents'] }, keys), {
      notBefore: new Date(now - 300_000),
      notAfter: new Date(now + this.lifetimeMs),
    });
    return Promise.resolve({
      credential: { certPem, keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
      request: `csr-${String(this.calls.length)}`,
      timings: {},
    });
  }
}

/** A bootstrap kubeconfig with a bootstrap token for `at`, as readBootstrapKubeconfig gives it. */
function bootstrapAt(at: Parameters<typeof clientConfigFor>[0] & { readonly caPem: string }): BootstrapCredential {
  const bootstrapConfig = clientConfigFor(at, { token: 'abcdef.0123456789abcdef' });
  return {
    path: '/bootstrap/kubeconfig',
    server: at.server,
    caPem: at.caPem,
    config: bootstrapConfig,
    credentials: kubeCredentials(bootstrapConfig),
    fingerprint: '1',
  };
}

function setup(
  options: {
    bootstrap?: () => BootstrapCredential | undefined;
    sink?: MemorySink;
    /** Sinks after `sink`. */
    more?: readonly MemorySink[];
    clock?: ManualClock;
    once?: boolean;
  } = {},
) {
  const clock = options.clock ?? new ManualClock();
  const issuer = new ScriptedIssuer(clock);
  const sink = options.sink ?? new MemorySink();
  const events: string[] = [];
  const observer: TargetObserver = {
    loaded: () => events.push('loaded'),
    rotated: (event) => events.push(`rotated with ${event.auth}`),
    rotationFailed: (event) =>
      events.push(
        `failed ${event.result} #${String(event.failures)} retry in ${String(event.retryAt - clock.now())} ms`,
      ),
    rebootstrapNeeded: (needed) => events.push(`rebootstrap ${String(needed)}`),
    currentRefused: (message) => events.push(`refused: ${message}`),
    outputRepaired: (_, state) => events.push(`repaired ${state}`),
    publishFailed: (_, message) => events.push(`publish failed ${message}`),
    readinessChanged: (ready) => events.push(`ready ${String(ready)}`),
    restarted: () => assert.fail('the restarter reports for itself'),
    restartFailed: () => assert.fail('the restarter reports for itself'),
  };
  /** The rotation times the restart action was asked to restart for. */
  const restarts: number[] = [];
  const bootstrap = bootstrapAt(endpoint);
  const rotator = new TargetRotator({
    config,
    sinks: [sink, ...(options.more ?? [])],
    issuer,
    rules: certificateRules({
      subject: { commonName: 'agent-a', organizations: ['agents'] },
      keyAlgorithm: 'ecdsa-p256',
    }),
    bootstrap: options.bootstrap ?? (() => bootstrap),
    clock,
    // The largest draw: retry delays are exactly 2 s, 4 s, 8 s...
    random: () => 0.999999999,
    observer,
    connect: connectTarget,
    restarter: {
      request: (rotatedAt) => restarts.push(rotatedAt),
      run: (signal) => untilAborted(signal),
    },
  });
  const stop = new AbortController();
  const done = options.once === true ? rotator.once(stop.signal) : rotator.run(stop.signal);
  return { clock, issuer, sink, events, restarts, rotator, stop, done };
}

/** setup() with `sink` holding a complete set, valid for a day, that an earlier process published. */
async function setupPublished(sink: MemorySink, options: { once?: boolean } = {}) {
  const clock = new ManualClock();
  const issued = await new ScriptedIssuer(clock).obtain(
    createKubeClient(clientConfigFor(endpoint, { token: 'abcdef.0123456789abcdef' })),
  );
  // An older next-rotation annotation: it loads as current, but the sink is rewritten.
  sink.stored = { name: config.name, ...endpoint, credential: issued.credential, nextRotation: 0 };
  return setup({ clock, sink, ...options });
}

describe('the rotation loop', () => {
  it('gets its first certificate with the bootstrap credential, then renews at the deadline with the certificate itself', async () => {
    const { clock, issuer, sink, events, rotator, stop, done } = setup();
    await settle();
    assert.deepEqual(issuer.calls, ['token']);
    assert.deepEqual(events, ['ready true', 'rotated with bootstrap']);
    const first = rotator.status().current ?? assert.fail('no current certificate');
    assert.equal(certPemOf(sink.stored), certPemOf(first));
    // The deadline lies in the 70-90% window of the certificate's life.
    const facts = readCertificate(certPemOf(first) ?? '');
    const fraction = (first.deadline - facts.notBefore) / (facts.notAfter - facts.notBefore);
    assert.ok(fraction >= 0.7 && fraction <= 0.9, `deadline at ${String(fraction)}`);
    assert.equal(clock.nextWake(), first.deadline);

    await clock.jumpTo(first.deadline - 1);
    assert.deepEqual(issuer.calls, ['token'], 'nothing before the deadline');
    await clock.jumpTo(first.deadline);
    assert.deepEqual(issuer.calls, ['token', 'certificate']);
    assert.notEqual(certPemOf(rotator.status().current), certPemOf(first));
    assert.equal(sink.writes, 2);
    stop.abort();
    await done;
  });

  it('a signer issuing certificates shorter than minRemainingSeconds: each is used for a quarter of its life, not renewed every second', async () => {
    const { clock, issuer, rotator, stop, done } = setup();
    await settle();
    issuer.lifetimeMs = 240_000;
    const first = rotator.status().current ?? assert.fail('no current certificate');
    await clock.jumpTo(first.deadline);
    const short = rotator.status().current ?? assert.fail('no current certificate');
    // A quarter of the 4 minutes it has left (less the milliseconds the certificate's whole-second expiry drops).
    const used = short.deadline - short.obtainedAt;
    assert.ok(used > 59_000 && used <= 60_000, `renewed ${String(used)} ms after it was issued`);
    for (let i = 0; i < 10; i++) await clock.jumpTo(clock.nextWake() ?? assert.fail('nothing scheduled'));
    assert.equal(issuer.calls.length, 12, 'one renewal a minute, not one a second');
    stop.abort();
    await done;
  });

  it('keeps the current certificate through failures, retrying after 2 s, 4 s, 8 s, then succeeds', async () => {
    const { clock, issuer, events, rotator, stop, done } = setup();
    await settle();
    const first = rotator.status().current ?? assert.fail();
    issuer.outcomes.push(
      new RotationError('denied', 'no'),
      new RotationError('error', 'down'),
      new RotationError('timeout', 'slow'),
    );
    await clock.jumpTo(first.deadline);
    for (const delay of [2_000, 4_000, 8_000]) {
      assert.equal(certPemOf(rotator.status().current), certPemOf(first), 'the current certificate stays');
      assert.equal(clock.nextWake(), clock.now() + delay);
      await clock.jumpTo(clock.now() + delay);
    }
    assert.deepEqual(events.slice(2), [
      'failed denied #1 retry in 2000 ms',
      'failed error #2 retry in 4000 ms',
      'failed timeout #3 retry in 8000 ms',
      'rotated with current',
    ]);
    stop.abort();
    await done;
  });

  // Issue 22: a target that sent a byte every 20 s held a rotation for good, logging nothing.
  it('a target that drips its answer fails the rotation at the request deadline, retries after a backoff, and keeps the current certificate', async () => {
    let dripped = 0;
    const server = await hostileServer((_request, response) => {
      drip(response, (sent) => (dripped = sent));
    });
    const { clock, issuer, events, sink, rotator, stop, done } = setup();
    const client = createKubeClient(
      { server: server.url, certificateAuthority: { pem: server.caPem }, insecureSkipTlsVerify: false, user: {} },
      { clock },
    );
    // The server runs in real time: polled, for at most 5 s.
    const waitFor = (condition: () => boolean) =>
      eventually(
        () => {
          assert.ok(condition());
          return Promise.resolve();
        },
        { timeoutMs: 5_000, intervalMs: 10 },
      );
    try {
      await settle();
      const first = rotator.status().current ?? assert.fail();
      const published = sink.current();
      issuer.callFirst = (signal) => client.request('POST', '/api/v1/namespaces/a/serviceaccounts/b/token', { signal });
      await clock.jumpTo(first.deadline);
      await waitFor(() => dripped > 0);
      await clock.advance(60_000);
      await waitFor(() => events.length > 2);
      assert.deepEqual(events.slice(2), ['failed error #1 retry in 2000 ms']);
      assert.equal(sink.current(), published, 'the current certificate stays published');
      assert.equal(certPemOf(rotator.status().current), certPemOf(first));
      issuer.callFirst = undefined;
      await clock.advance(2_000);
      assert.deepEqual(events.slice(2), ['failed error #1 retry in 2000 ms', 'rotated with current']);
    } finally {
      stop.abort();
      await done;
      await client.close();
      await server.stop();
    }
  });

  it('through a target outage longer than the certificate: retries up to 5 min apart while it is valid, one at its expiry, then at most 30 s apart', async () => {
    const { clock, issuer, events, rotator, stop, done } = setup();
    await settle();
    const first = rotator.status().current ?? assert.fail();
    for (let n = 0; n < 100; n++) issuer.outcomes.push(new RotationError('error', 'connect ECONNREFUSED'));
    await clock.jumpTo(first.deadline);
    const wakes: number[] = [];
    while (issuer.outcomes.length > 0) {
      const wake = clock.nextWake() ?? assert.fail('no retry scheduled');
      wakes.push(wake);
      await clock.jumpTo(wake);
    }
    const before = wakes.filter((wake) => wake < first.facts.notAfter);
    const after = wakes.filter((wake) => wake > first.facts.notAfter);
    assert.ok(wakes.includes(first.facts.notAfter), 'a retry at the moment the certificate expires');
    assert.ok(
      before.some((wake, i) => i > 0 && wake - (before[i - 1] ?? 0) > 60_000),
      'while valid, the 5-minute cap applies',
    );
    assert.ok(after.length > 10);
    for (const [i, wake] of after.entries())
      assert.ok(wake - (after[i - 1] ?? first.facts.notAfter) <= 30_000, `retry ${String(i)} within 30 s`);
    // The target is back: the next retry, at most 30 s later, gets a certificate with the bootstrap credential.
    await clock.jumpTo(clock.nextWake() ?? assert.fail());
    assert.equal(issuer.calls.at(-1), 'token');
    assert.equal(events.at(-1), 'rotated with bootstrap');
    assert.ok(rotator.status().ready);
    stop.abort();
    await done;
  });

  it('a target back from being unreachable: the backoff starts over at 2 s, and a first refusal of the bootstrap credential is confirmed before it is reported', async () => {
    // A restarted apiserver may refuse bootstrap tokens until its caches are filled: one 401, then it works.
    const transient = setup();
    transient.issuer.outcomes.push(
      ...[1, 2, 3, 4, 5].map(() => new RotationError('error', 'connect ECONNREFUSED')),
      new RotationError('unauthorized', 'HTTP 401 Unauthorized'),
    );
    await settle();
    for (let n = 0; n < 5; n++) await transient.clock.jumpTo(transient.clock.nextWake() ?? assert.fail());
    assert.deepEqual(transient.events.slice(-2), [
      'failed error #5 retry in 30000 ms',
      'failed unauthorized #1 retry in 2000 ms',
    ]);
    await transient.clock.jumpTo(transient.clock.nextWake() ?? assert.fail());
    assert.deepEqual(transient.events.slice(-2), ['ready true', 'rotated with bootstrap']);
    assert.ok(!transient.events.includes('rebootstrap true'), 'no false alarm');
    transient.stop.abort();
    await transient.done;

    // Refused again on the next attempt: that is a real refusal, reported.
    const real = setup();
    real.issuer.outcomes.push(
      new RotationError('error', 'connect ECONNREFUSED'),
      new RotationError('unauthorized', 'HTTP 401 Unauthorized'),
      new RotationError('unauthorized', 'HTTP 401 Unauthorized'),
    );
    await settle();
    await real.clock.jumpTo(real.clock.nextWake() ?? assert.fail());
    assert.ok(!real.events.includes('rebootstrap true'));
    await real.clock.jumpTo(real.clock.nextWake() ?? assert.fail());
    assert.deepEqual(real.events.slice(-2), ['failed unauthorized #2 retry in 4000 ms', 'rebootstrap true']);
    real.stop.abort();
    await real.done;
  });

  it('after expiry uses the bootstrap credential; when that is refused too, says re-bootstrap is needed, and tries a new one at once', async () => {
    const { clock, issuer, events, rotator, stop, done } = setup();
    await settle();
    const first = rotator.status().current ?? assert.fail();
    issuer.outcomes.push(
      new RotationError('unauthorized', 'token expired'),
      new RotationError('unauthorized', 'token expired'),
    );
    await clock.jumpTo(first.facts.notAfter + 1);
    assert.deepEqual(issuer.calls, ['token', 'token'], 'an expired certificate is not used to authenticate');
    assert.ok(events.includes('rebootstrap true'));
    assert.match(
      rotator.status().detail,
      /^re-bootstrap needed: certificate expired at .*, and the bootstrap credential is not accepted; fix: run kubeconfig-rotator bootstrap .* again .*--bootstrap-with federated.*check --config/,
    );
    await clock.jumpTo(clock.now() + 2_000);
    assert.equal(issuer.calls.length, 3);
    // A new bootstrap kubeconfig: no waiting out the 4 s backoff.
    rotator.bootstrapChanged();
    await settle();
    assert.equal(issuer.calls.length, 4);
    assert.deepEqual(events.slice(-3), ['rebootstrap false', 'ready true', 'rotated with bootstrap']);
    stop.abort();
    await done;
  });

  it('where credentials can be revoked, checks the current one every interval; a refusal renews at once with the bootstrap credential', async () => {
    const { clock, issuer, events, rotator, stop, done } = setup();
    issuer.acceptEvery(60_000);
    await settle();
    const first = rotator.status().current ?? assert.fail();
    assert.equal(clock.nextWake(), first.obtainedAt + 60_000, 'the check comes before the renewal');
    await clock.jumpTo(first.obtainedAt + 60_000);
    await clock.jumpTo(first.obtainedAt + 120_000);
    assert.deepEqual(issuer.checks, [first.obtainedAt + 60_000, first.obtainedAt + 120_000]);
    // A failure that is not a refusal (the target unreachable) changes nothing: the next check is a minute on.
    issuer.refusals.push(new RotationError('error', 'connection refused'));
    await clock.jumpTo(first.obtainedAt + 180_000);
    assert.equal(issuer.calls.length, 1);
    assert.equal(clock.nextWake(), first.obtainedAt + 240_000);

    issuer.refusals.push(new RotationError('unauthorized', 'HTTP 401 Unauthorized'));
    await clock.jumpTo(first.obtainedAt + 240_000);
    assert.deepEqual(issuer.calls, ['token', 'token'], 'renewed with the bootstrap credential, not the refused one');
    assert.deepEqual(events.slice(2), [
      'refused: HTTP 401 Unauthorized',
      'ready false',
      'ready true',
      'rotated with bootstrap',
    ]);
    assert.notEqual(certPemOf(rotator.status().current), certPemOf(first));
    stop.abort();
    await done;
  });

  // Issue 22: the first certificate worked, then every renewal and check failed hostname verification.
  it("keeps the bootstrap kubeconfig's tls-server-name for renewals, checks and what it publishes, and after a restart without that kubeconfig", async () => {
    const bootstrap = bootstrapAt({ ...endpoint, tlsServerName: 'api.east.internal' });
    const { clock, issuer, sink, rotator, stop, done } = setup({ bootstrap: () => bootstrap });
    issuer.acceptEvery(60_000);
    await settle();
    const first = rotator.status().current ?? assert.fail('no current certificate');
    await clock.jumpTo(first.obtainedAt + 60_000);
    await clock.jumpTo(first.deadline);
    assert.deepEqual(issuer.calls, ['token', 'certificate']);
    assert.deepEqual(issuer.serverNames, ['api.east.internal', 'api.east.internal', 'api.east.internal']);
    assert.equal(sink.current()?.tlsServerName, 'api.east.internal');
    stop.abort();
    await done;

    const again = setup({ clock, sink, bootstrap: () => undefined });
    await settle();
    const loaded = again.rotator.status().current ?? assert.fail('nothing loaded');
    await clock.jumpTo(loaded.deadline);
    assert.deepEqual(again.issuer.calls, ['certificate']);
    assert.deepEqual(again.issuer.serverNames, ['api.east.internal']);
    assert.equal(sink.current()?.tlsServerName, 'api.east.internal');
    again.stop.abort();
    await again.done;
  });

  it('rewrites a sink that lost its output, without a new certificate', async () => {
    const { issuer, sink, events, rotator, stop, done } = setup();
    await settle();
    sink.stored = undefined;
    rotator.checkOutputs();
    await settle();
    assert.equal(certPemOf(sink.current()), certPemOf(rotator.status().current));
    assert.deepEqual(issuer.calls, ['token']);
    assert.ok(events.includes('repaired missing'));
    stop.abort();
    await done;
  });

  it('asks the restart action once per rotation published: not for a certificate found at start, nor for a repair', async () => {
    const { clock, restarts, rotator, sink, stop, done } = await setupPublished(new MemorySink());
    await settle();
    assert.deepEqual(restarts, [], 'a certificate found at start is what the workloads already read');
    sink.stored = undefined;
    rotator.checkOutputs();
    await settle();
    assert.ok(sink.current() !== undefined);
    assert.deepEqual(restarts, [], 'a repair writes the same certificate again');
    const first = rotator.status().current ?? assert.fail('no current certificate');
    await clock.jumpTo(first.deadline);
    assert.notEqual(certPemOf(rotator.status().current), certPemOf(first));
    assert.deepEqual(restarts, [first.deadline]);
    const second = rotator.status().current ?? assert.fail('no current certificate');
    await clock.jumpTo(second.deadline);
    assert.deepEqual(restarts, [first.deadline, second.deadline]);
    stop.abort();
    await done;
  });

  it('restarts only once every sink holds the new certificate: after a failed write, when the repair lands', async () => {
    const failing = new FailingSink('failing');
    failing.failWrites = 1;
    const { clock, restarts, rotator, stop, done } = setup({ more: [failing] });
    await settle();
    const issuedAt = clock.now();
    assert.ok(rotator.status().current !== undefined);
    assert.deepEqual(restarts, [], 'a sink still holds nothing');
    await clock.advance(5_000);
    rotator.checkOutputs();
    await settle();
    assert.equal(certPemOf(failing.current()), certPemOf(rotator.status().current));
    assert.deepEqual(restarts, [issuedAt], 'for the rotation, once the repair made every sink current');
    rotator.checkOutputs();
    await settle();
    assert.deepEqual(restarts, [issuedAt]);
    stop.abort();
    await done;
  });

  it('completes a request pending from before a restart before anything else, even with a valid certificate', async () => {
    const { clock, issuer, rotator, stop, done } = setup();
    await settle();
    const first = rotator.status().current ?? assert.fail();
    issuer.pending = true;
    rotator.bootstrapChanged();
    await clock.jumpTo(clock.now() + 1);
    // Woken before its deadline, the loop sees the pending request and completes it.
    await clock.jumpTo(Math.min(first.deadline, clock.nextWake() ?? first.deadline));
    assert.equal(issuer.calls.length, 2);
    assert.equal(issuer.pending, false);
    stop.abort();
    await done;
  });

  it('without a bootstrap kubeconfig and without a certificate, it is not ready and says why', async () => {
    const { issuer, events, rotator, stop, done } = setup({ bootstrap: () => undefined });
    await settle();
    assert.deepEqual(issuer.calls, []);
    assert.match(events[0] ?? '', /^failed unauthorized #1 retry in 2000 ms$/);
    assert.equal(rotator.status().ready, false);
    assert.match(
      rotator.status().detail,
      /re-bootstrap needed: no certificate, and the bootstrap credential is not accepted/,
    );
    // Never issued one: the likely causes (bootstrap tokens not accepted among them) and the command that tells.
    assert.match(rotator.status().detail, /--enable-bootstrap-token-auth.*run kubeconfig-rotator check/);
    stop.abort();
    await done;
  });

  it('checks that what it got is ours before publishing: a certificate for another key is rejected', async () => {
    const { issuer, events, sink, stop, done } = setup();
    // Swap the key: the issuer returns a certificate whose key is not the one it hands back.
    const original = issuer.obtain.bind(issuer);
    issuer.obtain = async (kubeConfig) => {
      const issued = await original(kubeConfig);
      const keyPem = generateKeyPair('ecdsa-p256').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      return { ...issued, credential: { certPem: certPemOf(issued) ?? '', keyPem } };
    };
    await settle();
    assert.equal(sink.stored, undefined);
    assert.match(events[0] ?? '', /^failed rejected #1/);
    stop.abort();
    await done;
  });

  it('at start, repairs outputs through the same queue as its watches: never two writes to a sink at once', async () => {
    const sink = new GatedSink();
    const { issuer, rotator, stop, done } = await setupPublished(sink);
    await settle();
    // A watch fires while the start-up repair is still writing.
    rotator.checkOutputs();
    await settle();
    sink.release();
    await settle();
    sink.release();
    await settle();
    assert.equal(sink.mostActive, 1);
    assert.equal(sink.writes, 1, 'the second check finds the output current');
    assert.deepEqual(issuer.calls, [], 'the loaded certificate is kept');
    assert.equal(rotator.status().ready, true);
    stop.abort();
    await done;
  });

  it('--once with a valid certificate that a sink did not take retries publishing after 2 s, 4 s, not at the renewal deadline', async () => {
    const sink = new FailingSink();
    sink.failWrites = 2;
    const { clock, issuer, events, rotator, done } = await setupPublished(sink, { once: true });
    let finished = false;
    void done.then(() => (finished = true));
    await settle();
    for (const delay of [2_000, 4_000]) {
      assert.equal(finished, false);
      assert.equal(rotator.status().ready, false);
      assert.equal(clock.nextWake(), clock.now() + delay);
      await clock.jumpTo(clock.now() + delay);
    }
    await done;
    assert.equal(rotator.status().ready, true);
    assert.equal(sink.writes, 1);
    assert.deepEqual(issuer.calls, [], 'the loaded certificate is published, not replaced');
    assert.deepEqual(
      events.filter((event) => event.startsWith('publish failed')),
      ['publish failed read-only file system', 'publish failed read-only file system'],
    );
  });

  it('--once fails when stopped before any retry could publish', async () => {
    const sink = new FailingSink();
    sink.failWrites = Number.POSITIVE_INFINITY;
    const { clock, stop, done } = await setupPublished(sink, { once: true });
    await settle();
    await clock.jumpTo(clock.now() + 2_000);
    stop.abort();
    await assert.rejects(done, /^Error: east: interrupted before a valid certificate was published$/);
  });
});
