// Leader election against an in-memory Lease with the apiserver's optimistic concurrency, in virtual time.
// The real Lease API is exercised by the failover integration test (test/integration/approver-failover.test.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import {
  createLeaderElector,
  microTime,
  type LeaderElector,
  type LeaseRecord,
  type LeaseStore,
  type ObservedLease,
} from '../../../../src/io/kube/leader-election.ts';
import { createLogger } from '../../../../src/io/log.ts';
import { ManualClock } from '../../../support/manual-clock.ts';

const logger = createLogger({ name: 'test', level: 'silent' });
const conflict = () => new ApiException(409, 'Conflict', { reason: 'Conflict' }, {});

/** One Lease object; each candidate reaches it through its own connection, which a test can break. */
class MemoryLease {
  lease: ObservedLease | undefined;
  version = 0;
  readonly writes: LeaseRecord[] = [];

  connection(name: string) {
    const state = { mode: 'up' as Mode, attempts: 0 };
    const guard = async <T>(action: () => T, write = false): Promise<T> => {
      await Promise.resolve();
      // A tight loop would never let the virtual clock move on: past 200 writes the connection hangs.
      if (write && ++state.attempts > 200) return new Promise<T>(() => undefined);
      if (state.mode === 'failing' || (write && state.mode === 'refusingWrites'))
        throw new Error(`${name}: connection refused`);
      if (state.mode === 'hanging') return new Promise<T>(() => undefined);
      return action();
    };
    const write = (record: LeaseRecord) => {
      this.lease = { record, version: String(++this.version) };
      this.writes.push(record);
      return this.lease;
    };
    const store: LeaseStore = {
      description: 'lease test/approver',
      get: () => guard(() => this.lease),
      create: (record) =>
        guard(() => {
          if (this.lease !== undefined) throw conflict();
          return write(record);
        }, true),
      update: (record, version) =>
        guard(() => {
          if (this.lease?.version !== version) throw conflict();
          return write(record);
        }, true),
    };
    return { store, state };
  }
}

/** 'refusingWrites': reads work, every create and update fails (a store whose PUT always fails). */
type Mode = 'up' | 'failing' | 'hanging' | 'refusingWrites';

interface Candidate {
  readonly name: string;
  readonly elector: LeaderElector;
  readonly state: { mode: Mode; attempts: number };
}

function setup(names: readonly string[], random = () => 0.5) {
  const clock = new ManualClock();
  const lease = new MemoryLease();
  /** Every start and stop of leadership, in order, with the virtual time. */
  const timeline: { at: number; who: string; event: 'started' | 'stopped'; reason?: string }[] = [];
  const candidates: Candidate[] = names.map((name) => {
    const { store, state } = lease.connection(name);
    const elector = createLeaderElector({
      store,
      identity: name,
      clock,
      random,
      logger,
      onStartedLeading: () => timeline.push({ at: clock.monotonic(), who: name, event: 'started' }),
      onStoppedLeading: (reason) => timeline.push({ at: clock.monotonic(), who: name, event: 'stopped', reason }),
    });
    return { name, elector, state };
  });
  const leaders = () => candidates.filter((candidate) => candidate.elector.isLeader).map((candidate) => candidate.name);
  /** At no moment of the timeline do two candidates lead. */
  const assertNeverTwoLeaders = () => {
    const current = new Set<string>();
    for (const entry of timeline) {
      if (entry.event === 'started') {
        assert.equal(
          current.size,
          0,
          `${entry.who} started leading at ${String(entry.at)} ms while ${[...current].join()} led`,
        );
        current.add(entry.who);
      } else current.delete(entry.who);
    }
  };
  return { clock, lease, timeline, candidates, leaders, assertNeverTwoLeaders };
}

function at<T>(list: readonly T[], index: number): T {
  return list[index] ?? assert.fail(`no element ${String(index)}`);
}

describe('leader election on a Lease', () => {
  it('the first candidate creates the Lease and leads; the second one waits', async () => {
    const { clock, lease, candidates, leaders } = setup(['a', 'b']);
    at(candidates, 0).elector.start();
    await clock.advance(10);
    at(candidates, 1).elector.start();
    await clock.advance(1000);
    assert.deepEqual(leaders(), ['a']);
    assert.equal(at(candidates, 1).elector.observedLeader, 'a');
    assert.deepEqual(lease.lease?.record, {
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: '2026-01-01T00:00:00.000000Z',
      renewTime: lease.lease?.record.renewTime,
      leaseTransitions: 0,
    });
  });

  it('the leader renews every retry period and keeps the lease for as long as it can', async () => {
    const { clock, lease, candidates, leaders, timeline } = setup(['a', 'b']);
    for (const candidate of candidates) candidate.elector.start();
    await clock.advance(60_000);
    assert.deepEqual(leaders(), ['a']);
    assert.deepEqual(
      timeline.map((entry) => `${entry.who} ${entry.event}`),
      ['a started'],
    );
    const renewals = lease.writes.filter((record) => record.holderIdentity === 'a').length;
    assert.equal(renewals, 31, 'created at 0 and renewed every 2 s for 60 s');
    assert.equal(lease.lease?.record.renewTime, '2026-01-01T00:01:00.000000Z');
  });

  it('when two candidates start at the same moment, exactly one wins', async () => {
    const { clock, candidates, leaders, assertNeverTwoLeaders } = setup(['a', 'b', 'c']);
    for (const candidate of candidates) candidate.elector.start();
    await clock.advance(30_000);
    assert.equal(leaders().length, 1);
    assertNeverTwoLeaders();
  });

  it('when the leader dies, another takes over once the lease it observed has expired, and not before', async () => {
    const { clock, lease, candidates, leaders, timeline, assertNeverTwoLeaders } = setup(['a', 'b']);
    for (const candidate of candidates) candidate.elector.start();
    await clock.advance(5_000);
    // kill -9: the process stops talking; nothing is released. Its last renewal was at 4 s.
    at(candidates, 0).state.mode = 'hanging';
    const lastRenewal = 4_000;
    await clock.advance(lastRenewal + 15_000 - clock.monotonic() - 1);
    assert.ok(!at(candidates, 1).elector.isLeader, 'b must not lead before the lease has expired');
    // b measures the lease from when it saw the last renewal, which is at most one of its retries later.
    await clock.advance(2_000 * 2.2 + 100);
    assert.deepEqual(leaders(), ['b']);
    const started = timeline.find((entry) => entry.who === 'b' && entry.event === 'started');
    assert.equal(
      started?.at,
      21_450,
      'b saw the 4 s renewal at 6.4 s (its retries come every 3.2 s here) and retried 50 ms after that lease expired',
    );
    assert.equal(lease.lease?.record.leaseTransitions, 1);
    assertNeverTwoLeaders();
  });

  // Issue 22: 318 GET+PUT pairs in 1.5 s against a store whose PUT always failed, the observed lease expired.
  it('after a failed acquire it waits the jittered retry period, even when the observed lease has expired', async () => {
    const { clock, candidates } = setup(['a', 'b']);
    const [a, b] = [at(candidates, 0), at(candidates, 1)];
    a.elector.start();
    await clock.advance(10);
    a.state.mode = 'hanging';
    b.state.mode = 'refusingWrites';
    b.elector.start();
    await clock.advance(60_000);
    // a's lease (15 s) expires at about 15 s; from then on every attempt of b fails, each followed by 2 s x 1.6.
    assert.ok(b.state.attempts <= Math.ceil(45_000 / 3_200) + 1, `${String(b.state.attempts)} attempts in 45 s`);
    assert.ok(b.state.attempts >= 10, `${String(b.state.attempts)} attempts: b kept trying`);
    await b.elector.stop();
    await a.elector.stop();
  });

  it('a leader whose renewals hang steps down at the renew deadline, before anyone may take over', async () => {
    const { clock, candidates, timeline, assertNeverTwoLeaders } = setup(['a', 'b']);
    for (const candidate of candidates) candidate.elector.start();
    await clock.advance(4_500);
    at(candidates, 0).state.mode = 'hanging';
    await clock.advance(20_000);
    const stopped = timeline.find((entry) => entry.who === 'a' && entry.event === 'stopped');
    assert.deepEqual(stopped, {
      at: 14_000,
      who: 'a',
      event: 'stopped',
      reason: 'could not renew the lease within 10000 ms',
    });
    const started = timeline.find((entry) => entry.who === 'b' && entry.event === 'started');
    assert.ok(started !== undefined && started.at >= 4_000 + 15_000, `b started at ${String(started?.at)}`);
    assertNeverTwoLeaders();
  });

  it('a leader that cannot reach the API steps down at the deadline too, and leads again once it can', async () => {
    const { clock, candidates, timeline } = setup(['a']);
    const [a] = candidates;
    a?.elector.start();
    await clock.advance(1_000);
    if (a === undefined) assert.fail();
    a.state.mode = 'failing';
    await clock.advance(11_000);
    assert.ok(!a.elector.isLeader);
    a.state.mode = 'up';
    await clock.advance(5_000);
    assert.ok(a.elector.isLeader, 'its own lease: no need to wait for expiry');
    // As a candidate again it retries every 3.2 s here (2 s with client-go's jitter at 0.5): 10 s failed, 13.2 s won.
    assert.deepEqual(
      timeline.map((entry) => `${String(entry.at)} ${entry.event}`),
      ['0 started', '10000 stopped', '13200 started'],
    );
  });

  it('on shutdown the leader releases the Lease and the other candidate takes over at its next retry', async () => {
    const { clock, lease, candidates, timeline } = setup(['a', 'b']);
    for (const candidate of candidates) candidate.elector.start();
    await clock.advance(3_000);
    const stopping = at(candidates, 0).elector.stop();
    await clock.advance(0);
    await stopping;
    assert.equal(lease.lease?.record.holderIdentity, '');
    assert.equal(lease.lease.record.leaseDurationSeconds, 1);
    await clock.advance(2_000 * 2.2);
    assert.ok(at(candidates, 1).elector.isLeader);
    assert.deepEqual(
      timeline.map((entry) => `${entry.who} ${entry.event}${entry.reason === undefined ? '' : ` (${entry.reason})`}`),
      ['a started', 'a stopped (shutting down)', 'b started'],
    );
  });

  it('a candidate that never led releases nothing on shutdown', async () => {
    const { clock, lease, candidates } = setup(['a', 'b']);
    for (const candidate of candidates) candidate.elector.start();
    await clock.advance(3_000);
    const writes = lease.writes.length;
    const stopping = at(candidates, 1).elector.stop();
    await clock.advance(0);
    await stopping;
    assert.equal(lease.writes.length, writes);
    assert.equal(lease.lease?.record.holderIdentity, 'a');
  });

  it('writes Lease times as MicroTime, which the apiserver requires', () => {
    assert.equal(microTime(Date.parse('2026-11-28T16:40:09.123Z')), '2026-11-28T16:40:09.123000Z');
  });
});
