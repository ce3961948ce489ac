// The queue and workers of a leadership term, in virtual time. The approver's use of them is tested in
// test/unit/approver/controller.test.ts, leader election itself in leader-election.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaderWorkers } from '../../../../src/io/kube/leader-workers.ts';
import { ManualClock } from '../../../support/manual-clock.ts';

/** Workers whose processing of a key waits until the test releases it, or fails when the test says. */
function setup(workers = 2) {
  const clock = new ManualClock();
  const started: string[] = [];
  const finished: string[] = [];
  const failures: { key: string; retryInMs: number }[] = [];
  const held = new Map<string, { release: () => void; fail: (error: Error) => void; ended: AbortSignal }>();
  const behaviour = { hold: false, failing: new Set<string>() };
  const leader = new LeaderWorkers({
    workers,
    clock,
    retry: { initialMs: 100, maxMs: 1_000 },
    process: (key, ended) => {
      started.push(key);
      if (behaviour.failing.has(key)) return Promise.reject(new Error(`${key} failed`));
      if (!behaviour.hold) {
        finished.push(key);
        return Promise.resolve();
      }
      return new Promise((resolve, reject) =>
        held.set(key, {
          release: () => {
            finished.push(key);
            resolve();
          },
          fail: reject,
          ended,
        }),
      );
    },
    failed: (key, _error, retryInMs) => failures.push({ key, retryInMs }),
  });
  return { clock, leader, started, finished, failures, held, behaviour };
}

describe('the workers of a leadership term', () => {
  it('work on nothing while not leading; a key added again while it waits is worked on once', async () => {
    const { clock, leader, started, held, behaviour } = setup(1);
    behaviour.hold = true;
    leader.add('a');
    assert.equal(leader.leading, false);
    assert.equal(leader.depth, 0);
    assert.equal(leader.start(), true);
    assert.equal(leader.start(), false, 'one term at a time');
    await clock.advance(0);
    assert.deepEqual(started, [], 'a key added before the term is not carried into it');
    for (const key of ['a', 'b', 'b', 'b']) leader.add(key);
    await clock.advance(0);
    assert.equal(leader.depth, 2, 'a in process, b waiting once');
    held.get('a')?.release();
    await clock.advance(0);
    held.get('b')?.release();
    await clock.advance(0);
    assert.deepEqual(started, ['a', 'b']);
    assert.equal(leader.depth, 0);
    leader.end();
    await leader.drained();
  });

  it('a failing key is reported with its delay and retried after the backoff, not before', async () => {
    const { clock, leader, started, failures, behaviour } = setup();
    behaviour.failing.add('a');
    leader.start();
    leader.add('a');
    await clock.advance(0);
    assert.deepEqual(failures, [{ key: 'a', retryInMs: 100 }]);
    assert.equal(leader.depth, 1, 'waiting for its retry');
    await clock.advance(99);
    assert.equal(started.length, 1);
    await clock.advance(1);
    assert.equal(started.length, 2);
    assert.deepEqual(failures[1], { key: 'a', retryInMs: 200 });
    behaviour.failing.clear();
    await clock.advance(200);
    assert.equal(started.length, 3);
    assert.equal(failures.length, 2, 'a success is not reported');
    assert.equal(leader.depth, 0);
    leader.end();
    await leader.drained();
    assert.equal(clock.pending, 0, 'no retry left waiting');
  });

  it('ending the term aborts its signal at once, takes no other key, reports no failure and drains', async () => {
    const { clock, leader, started, finished, failures, held, behaviour } = setup(1);
    behaviour.hold = true;
    leader.start();
    leader.add('a');
    leader.add('b');
    await clock.advance(0);
    const a = held.get('a');
    assert.ok(a !== undefined);
    assert.equal(a.ended.aborted, false);
    assert.equal(leader.end(), true);
    assert.equal(leader.end(), false, 'already ended');
    assert.equal(a.ended.aborted, true, 'work in flight sees the term ended');
    assert.equal(leader.leading, false);
    let drained = false;
    const draining = leader.drained().then(() => (drained = true));
    await clock.advance(0);
    assert.equal(drained, false, 'drained waits for the key in process');
    a.fail(new Error('written too late'));
    await draining;
    assert.deepEqual(started, ['a'], 'b is never taken');
    assert.deepEqual(finished, []);
    assert.deepEqual(failures, [], 'a failure after the term ended is not reported');
  });

  it('a new term starts with an empty queue and a fresh signal', async () => {
    const { clock, leader, started, held, behaviour } = setup(1);
    behaviour.hold = true;
    leader.start();
    leader.add('a');
    leader.add('b');
    await clock.advance(0);
    leader.end();
    held.get('a')?.release();
    await leader.drained();
    behaviour.hold = false;
    leader.start();
    leader.add('c');
    await clock.advance(0);
    assert.deepEqual(started, ['a', 'c']);
    leader.end();
    await leader.drained();
  });

  it('several workers work several keys at once, never one key twice at once', async () => {
    const { clock, leader, started, held, behaviour } = setup(3);
    behaviour.hold = true;
    leader.start();
    for (const key of ['a', 'b', 'c', 'd']) leader.add(key);
    await clock.advance(0);
    assert.deepEqual(started, ['a', 'b', 'c']);
    leader.add('a');
    await clock.advance(0);
    assert.deepEqual(started, ['a', 'b', 'c'], 'a, added again while in process, waits');
    held.get('b')?.release();
    await clock.advance(0);
    assert.deepEqual(started, ['a', 'b', 'c', 'd']);
    held.get('a')?.release();
    await clock.advance(0);
    assert.deepEqual(started, ['a', 'b', 'c', 'd', 'a'], 'a again once done');
    leader.end();
    for (const { release } of held.values()) release();
    await leader.drained();
  });
});
