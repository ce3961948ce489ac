// Publishing to every sink, without a cluster: sinks in memory, some slow, some failing. Checks the fan-out,
// the set of stale sinks, that writes to a sink never overlap, and repair of outputs changed behind our back.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { CredentialBundle } from '../../../src/core/kubeconfig/bundle.ts';
import { Publisher } from '../../../src/sidecar/publisher.ts';
import type { Sink } from '../../../src/sidecar/sinks/sink.ts';
import { certPemOf, credentialBundle } from '../../support/credential-bundle.ts';
import { eventually } from '../../support/eventually.ts';
import { FailingSink, GatedSink, MemorySink } from '../../support/memory-sinks.ts';
import { opensslCa } from '../../support/openssl-ca.ts';

const ca = opensslCa('publisher-ca');
after(() => {
  ca.dispose();
});

const NOW = Date.parse('2026-12-01T12:00:00Z');

/** A complete set whose certificate expires at `notAfter`. */
const bundleUntil = (notAfter: number) => credentialBundle(ca, { notBefore: NOW - 300_000, notAfter });

const current = bundleUntil(NOW + 86_400_000);

/** The publisher's queue takes a few turns of the event loop: checked every one. */
const soon = <T>(condition: () => T) => eventually(condition, { timeoutMs: 5_000, intervalMs: 0 });

function setup(sinks: readonly Sink[], bundle: () => CredentialBundle | undefined = () => current) {
  const events: string[] = [];
  let settled = 0;
  const publisher = new Publisher({
    sinks,
    bundle,
    observer: {
      outputRepaired: (sink, state) => events.push(`${sink.description} repaired (${state})`),
      publishFailed: (sink, message) => events.push(`${sink.description} failed: ${message}`),
    },
    settled: () => {
      settled++;
    },
  });
  return { publisher, events, settledCount: () => settled };
}

describe('the publisher', () => {
  it('writes the set to every sink; one that fails is stale and reported, the others still get it', async () => {
    const a = new MemorySink('a');
    const broken = new FailingSink('broken');
    broken.failWrites = 1;
    const c = new MemorySink('c');
    const { publisher, events, settledCount } = setup([a, broken, c]);
    await publisher.publish();
    assert.equal(a.current(), current);
    assert.equal(c.current(), current);
    assert.equal(broken.current(), undefined);
    assert.deepEqual(
      publisher.stale.map((sink) => sink.description),
      ['broken'],
    );
    assert.deepEqual(events, ['broken failed: read-only file system']);
    assert.equal(settledCount(), 1);

    await publisher.publish();
    assert.equal(broken.current(), current);
    assert.deepEqual(publisher.stale, [], 'a sink that takes a later write is no longer stale');
  });

  it('throws only when no sink could take the set, naming each one', async () => {
    const first = new FailingSink('first');
    const second = new FailingSink('second');
    first.failWrites = second.failWrites = 1;
    const { publisher } = setup([first, second]);
    await assert.rejects(publisher.publish(), {
      name: 'RotationError',
      message: 'publishing failed everywhere: first: read-only file system; second: read-only file system',
    });
    assert.deepEqual(
      publisher.stale.map((sink) => sink.description),
      ['first', 'second'],
    );
    await publisher.publish();
    assert.deepEqual(publisher.stale, [], 'a failed publish does not block the queue');
  });

  it('repair rewrites only the sinks that lost or changed their output, and says what it found', async () => {
    const kept = new MemorySink('kept');
    const emptied = new MemorySink('emptied');
    const changed = new MemorySink('changed');
    const { publisher, events, settledCount } = setup([kept, emptied, changed]);
    await publisher.publish();
    emptied.stored = undefined;
    changed.stored = { ...current, caPem: 'someone else' };
    publisher.repairSoon();
    await publisher.idle();
    assert.deepEqual(events, ['emptied repaired (missing)', 'changed repaired (damaged)']);
    assert.deepEqual([kept.writes, emptied.writes, changed.writes], [1, 2, 2]);
    assert.equal(changed.current(), current);
    assert.equal(settledCount(), 2);
  });

  it('repair retries a stale sink until it holds the set; a sink that cannot be checked stays stale', async () => {
    const flaky = new FailingSink('flaky');
    flaky.failWrites = 2;
    const unreadable = new FailingSink('unreadable');
    const { publisher, events } = setup([flaky, unreadable]);
    await publisher.publish();
    unreadable.failChecks = 1;
    publisher.repairSoon();
    await publisher.idle();
    assert.deepEqual(
      publisher.stale.map((sink) => sink.description),
      ['flaky', 'unreadable'],
    );
    publisher.repairSoon();
    await publisher.idle();
    assert.deepEqual(publisher.stale, []);
    assert.deepEqual(events, [
      'flaky failed: read-only file system',
      'flaky failed: read-only file system',
      'unreadable failed: cannot check: input/output error',
      'flaky repaired (missing)',
    ]);
  });

  it('never runs two writes to a sink at once, and coalesces repairs asked for while one waits', async () => {
    const sink = new GatedSink('gated');
    const { publisher, settledCount } = setup([sink]);
    const publishing = publisher.publish();
    for (let i = 0; i < 5; i++) publisher.repairSoon();
    const second = publisher.publish();
    await soon(() => sink.waiting > 0);
    assert.equal(sink.active, 1);
    // Each write is let through once it waits at the gate, until both publishes are done.
    let done = false as boolean;
    const both = Promise.all([publishing, second]).then(() => {
      done = true;
    });
    while (!done) {
      await soon(() => done || sink.waiting > 0);
      sink.release();
    }
    await both;
    await publisher.idle();
    assert.equal(sink.mostActive, 1);
    // The first publish, one repair pass (finds it current: no write), the second publish.
    assert.equal(sink.writes, 2);
    assert.equal(settledCount(), 3, 'five repairs asked for while busy made one pass');
  });

  it('writes the set current when the write runs, not when it was queued', async () => {
    const sink = new GatedSink('gated');
    let bundle = current;
    const { publisher } = setup([sink], () => bundle);
    const first = publisher.publish();
    await soon(() => sink.waiting > 0);
    // The first write is under way; the second is queued behind it, then a newer set becomes current.
    const second = publisher.publish();
    const newer = bundleUntil(NOW + 2 * 86_400_000);
    bundle = newer;
    sink.release();
    await soon(() => sink.waiting > 0);
    sink.release();
    await Promise.all([first, second]);
    assert.equal(sink.current(), newer);
  });

  it('without a set to publish, writes nothing', async () => {
    const sink = new MemorySink('empty');
    const { publisher } = setup([sink], () => undefined);
    await publisher.publish();
    publisher.repairSoon();
    await publisher.idle();
    assert.equal(sink.writes, 0);
  });

  it('finds the set with the latest expiry among the sinks; an unreadable sink is stale and reported', async () => {
    const older = new MemorySink('older');
    const newest = new MemorySink('newest');
    const unreadable = new FailingSink('unreadable');
    const empty = new MemorySink('empty');
    older.stored = bundleUntil(NOW + 3_600_000);
    newest.stored = bundleUntil(NOW + 7_200_000);
    unreadable.stored = bundleUntil(NOW + 9_000_000);
    unreadable.failReads = 1;
    const { publisher, events } = setup([older, unreadable, newest, empty]);
    const found = await publisher.newest();
    assert.equal(found?.from, newest);
    assert.equal(certPemOf(found.stored), certPemOf(newest.stored));
    assert.equal(found.facts.notAfter, NOW + 7_200_000);
    assert.deepEqual(
      publisher.stale.map((sink) => sink.description),
      ['unreadable'],
    );
    assert.deepEqual(events, ['unreadable failed: cannot read: permission denied']);
    assert.equal(await setup([empty]).publisher.newest(), undefined);
  });
});
