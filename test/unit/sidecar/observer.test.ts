// What the sidecar reports per target: the reload margin it leaves consumers, and a warning (log and Event)
// when a certificate lives too short for Go consumers to pick up its successor in time.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { readCredential } from '../../../src/core/credential/credential.ts';
import { createCertificateAuthority, issueCertificate } from '../../../src/core/pki/issue.ts';
import { rotationDeadline } from '../../../src/core/rotation/schedule.ts';
import type { EventRecorder } from '../../../src/io/kube/events.ts';
import { createLogger } from '../../../src/io/log.ts';
import { sidecarMetrics, targetObserver } from '../../../src/sidecar/observer.ts';
import type { CurrentCredential } from '../../../src/sidecar/rotator.ts';
import { ManualClock } from '../../support/manual-clock.ts';

// Whole seconds: certificates carry no milliseconds.
const issuedAt = Math.floor(Date.now() / 1000) * 1000;
const ca = createCertificateAuthority('observer-ca', {
  notBefore: new Date(issuedAt - 3_600_000),
  notAfter: new Date(issuedAt + 86_400_000),
});
const rule = { minFraction: 0.7, maxFraction: 0.9, minRemainingSeconds: 420 };

/** A certificate as kube-controller-manager issues it (NotBefore backdated 5 minutes), scheduled by the rule. */
function issuedFor(ttlSeconds: number): CurrentCredential {
  const pair = issueCertificate(
    ca,
    { commonName: 'agent-a', usage: 'client' },
    { notBefore: new Date(issuedAt - 300_000), notAfter: new Date(issuedAt + ttlSeconds * 1000) },
  );
  const credential = { certPem: pair.cert, keyPem: pair.key };
  const facts = readCredential(credential);
  const deadline = rotationDeadline(facts, { at: issuedAt, issued: true }, rule, 0.5);
  return { credential, facts, obtainedAt: issuedAt, deadline, fitsConfig: true };
}

/** An observer of target "east" whose Events and log lines are kept. */
function recorded(
  kind: 'certificate' | 'token' = 'certificate',
  clock = new ManualClock(issuedAt),
  bootstrapWith: 'token' | 'federated' = 'token',
) {
  const registry = new Registry();
  const events: { type: string; reason: string; message: string }[] = [];
  const recorder: EventRecorder = {
    normal: (reason, message) => events.push({ type: 'Normal', reason, message }),
    warning: (reason, message) => events.push({ type: 'Warning', reason, message }),
    flush: () => Promise.resolve(),
  };
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const observer = targetObserver(
    'east',
    sidecarMetrics(registry),
    recorder,
    createLogger({ name: 'test', destination }),
    { restarts: false, kind, bootstrapWith, clock },
  );
  const logs = () => lines.map((line) => JSON.parse(line) as { level: string; msg: string });
  return { observer, registry, events, logs };
}

function observe(current: CurrentCredential) {
  const { observer, registry, events, logs } = recorded();
  observer.rotated({ current, auth: 'current', request: 'csr-1', durationMs: 40, timings: {} });
  return { registry, events, logs: logs() };
}

async function marginSeconds(registry: Registry): Promise<number | undefined> {
  const metric = await registry.getSingleMetric('kubeconfig_rotator_reload_margin_seconds')?.get();
  return metric?.values.find((value) => value.labels.target === 'east')?.value;
}

describe('reload margin', () => {
  it('a 10-minute certificate leaves consumers 7 minutes: reported, no warning', async () => {
    const { registry, events, logs } = observe(issuedFor(600));
    assert.equal(await marginSeconds(registry), 420);
    assert.deepEqual(
      events.map((event) => event.reason),
      ['CertificateRotated'],
    );
    assert.ok(logs.every((line) => line.level !== 'warn'));
  });

  it('a 4-minute certificate is reported as too short in the log, an Event and the metric', async () => {
    const { registry, events, logs } = observe(issuedFor(240));
    assert.equal(await marginSeconds(registry), 180);
    const warning = events.find((event) => event.reason === 'CertificateTooShort');
    assert.equal(warning?.type, 'Warning');
    assert.match(warning.message, /^east: .*300 s before it expires \(180 s\)/);
    assert.ok(logs.some((line) => line.level === 'warn' && line.msg === warning.message));
  });
});

describe('a refused bootstrap credential', () => {
  const refused = 'creating CSR: HTTP 401 Unauthorized';

  it('before any certificate: a BootstrapRefused Event and log naming the likely causes and kubeconfig-rotator check', () => {
    const { observer, events, logs } = recorded();
    observer.rebootstrapNeeded(true, refused);
    const [event] = events;
    assert.equal(event?.reason, 'BootstrapRefused');
    assert.match(
      event.message,
      /^east: no certificate was ever issued and the target refuses the bootstrap credential/,
    );
    assert.match(event.message, /--enable-bootstrap-token-auth/);
    assert.match(event.message, /run kubeconfig-rotator check --config/);
    assert.match(event.message, /fix: run kubeconfig-rotator bootstrap .* again.*bootstrap --bootstrap-with federated/);
    assert.match(event.message, /\. Error: creating CSR: HTTP 401 Unauthorized$/);
    const line = logs().find((entry) => entry.level === 'error');
    assert.match(line?.msg ?? '', /^re-bootstrap needed: no certificate was ever issued.*kubeconfig-rotator check/);
    assert.match(line?.msg ?? '', /fix: run kubeconfig-rotator bootstrap/);
  });

  it('the fix comes before the error in the Event, so a long error cut at 1024 characters leaves it whole', () => {
    const { observer, events } = recorded();
    observer.rebootstrapNeeded(true, `creating CSR: ${'x'.repeat(2_000)}`);
    assert.match((events[0]?.message ?? '').slice(0, 1023), /fix: run kubeconfig-rotator bootstrap.*check --config/);
  });

  it('after a certificate expired: RebootstrapNeeded, asking for bootstrap again', () => {
    const { observer, events } = recorded();
    observer.rotated({ current: issuedFor(600), auth: 'current', request: 'csr-1', durationMs: 40, timings: {} });
    observer.rebootstrapNeeded(true, refused);
    const event = events.find((entry) => entry.type === 'Warning');
    assert.equal(event?.reason, 'RebootstrapNeeded');
    assert.match(event.message, /the certificate expired .*run kubeconfig-rotator bootstrap/);
    assert.match(event.message, /--bootstrap-with federated.*check --config/);
    assert.doesNotMatch(event.message, /--enable-bootstrap-token-auth/);
  });

  it('federated bootstrap refused: names the trust of the source issuer and bootstrap --bootstrap-with federated, not bootstrap tokens', () => {
    const { observer, events } = recorded('certificate', new ManualClock(issuedAt), 'federated');
    observer.rebootstrapNeeded(true, refused);
    assert.equal(events[0]?.reason, 'BootstrapRefused');
    assert.match(
      events[0].message,
      /refuses the pod's ServiceAccount token \(federated bootstrap\): the target does not trust/,
    );
    assert.match(
      events[0].message,
      /fix: run kubeconfig-rotator bootstrap --credential certificate --bootstrap-with federated/,
    );
    assert.doesNotMatch(events[0].message, /--enable-bootstrap-token-auth|bootstrap token expired/);
  });

  it('a token target that never had a token names revocation and, federated, an untrusted issuer', () => {
    const { observer, events } = recorded('token');
    observer.rebootstrapNeeded(true, refused);
    assert.equal(events[0]?.reason, 'BootstrapRefused');
    assert.match(events[0].message, /revoked .*does not trust the source's issuer/);
    assert.match(events[0].message, /bootstrap --credential federated/);
    assert.doesNotMatch(events[0].message, /--bootstrap-with/);
  });
});

describe('time comes from the injected clock', () => {
  it('a certificate found at start is expired by the clock, and the last success is stamped with it', async () => {
    const current = issuedFor(600);
    const clock = new ManualClock(current.facts.notAfter + 1_000);
    const { observer, registry, logs } = recorded('certificate', clock);
    observer.loaded(current, 'directory /out');
    assert.equal(logs().at(-1)?.msg, 'found an expired certificate; renewing it');
    observer.rotated({ current, auth: 'bootstrap', request: 'csr-2', durationMs: 40, timings: {} });
    const metric = await registry.getSingleMetric('kubeconfig_rotator_last_success_timestamp_seconds')?.get();
    assert.equal(metric?.values[0]?.value, clock.now() / 1000);
  });
});
