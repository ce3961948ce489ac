import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tokenBucket } from '../../../../src/io/kube/rate-limit.ts';
import { QueueClosed, WorkQueue } from '../../../../src/io/kube/work-queue.ts';
import { ManualClock } from '../../../support/manual-clock.ts';

describe('the client rate limit', () => {
  it('lets a burst through at once, then one request per 1/qps seconds, in order', async () => {
    const clock = new ManualClock();
    const limiter = tokenBucket({ qps: 20, burst: 30, clock });
    const passed: number[] = [];
    const requests = Array.from({ length: 40 }, (_, i) => limiter.acquire().then(() => passed.push(i)));
    await clock.advance(0);
    assert.equal(passed.length, 30, 'the burst');
    assert.equal(limiter.waiting, 10);
    await clock.advance(50);
    assert.equal(passed.length, 31, 'one more after 50 ms at 20 qps');
    await clock.advance(450);
    await Promise.all(requests);
    assert.deepEqual(
      passed,
      Array.from({ length: 40 }, (_, i) => i),
      'first come, first served',
    );
  });

  it('refills while idle, up to the burst and no more', async () => {
    const clock = new ManualClock();
    const limiter = tokenBucket({ qps: 10, burst: 5, clock });
    for (let i = 0; i < 5; i++) await limiter.acquire();
    await clock.advance(60_000);
    let passed = 0;
    for (let i = 0; i < 6; i++) void limiter.acquire().then(() => passed++);
    await clock.advance(0);
    assert.equal(passed, 5);
  });

  it('refuses requests beyond the waiting limit at once and says so', async () => {
    const clock = new ManualClock();
    let refused = 0;
    const limiter = tokenBucket({ qps: 1, burst: 1, maxWaiting: 2, clock, onRefused: () => refused++ });
    await limiter.acquire();
    const waiting = [limiter.acquire(), limiter.acquire()];
    await assert.rejects(limiter.acquire(), /more than 2 requests waiting/);
    assert.equal(refused, 1);
    await clock.advance(2_000);
    await Promise.all(waiting);
  });

  it('fails waiting requests when its signal aborts (shutdown)', async () => {
    const clock = new ManualClock();
    const stop = new AbortController();
    const limiter = tokenBucket({ qps: 1, burst: 1, clock, signal: stop.signal });
    await limiter.acquire();
    const waiting = limiter.acquire();
    stop.abort(new Error('stopping'));
    await assert.rejects(waiting, /stopping/);
    assert.equal(clock.pending, 0);
  });

  for (const qps of [0, Infinity])
    it(`a qps of ${String(qps)} means no limit: far more than the burst pass with no time passing`, async () => {
      const clock = new ManualClock();
      const limiter = tokenBucket({ qps, burst: 1, clock });
      let passed = 0;
      const requests = Array.from({ length: 1000 }, () => limiter.acquire().then(() => passed++));
      await clock.advance(0);
      assert.equal(passed, 1000, 'every request passed at once');
      assert.equal(limiter.waiting, 0);
      assert.equal(clock.pending, 0, 'none waits on the clock');
      await Promise.all(requests);
    });
});

describe('the work queue', () => {
  it('holds a key once however often it is added', async () => {
    const queue = new WorkQueue();
    for (const key of ['a', 'b', 'a', 'a', 'c', 'b']) queue.add(key);
    assert.equal(queue.length, 3);
    assert.deepEqual([await queue.next(), await queue.next(), await queue.next()], ['a', 'b', 'c']);
  });

  it('never hands a key to two workers: added while in process, it comes back once done', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    const first = await queue.next();
    queue.add('a');
    queue.add('b');
    assert.equal(await queue.next(), 'b', 'a is in process, so b comes first');
    let second: string | undefined;
    void queue.next().then((key) => (second = key));
    await Promise.resolve();
    assert.equal(second, undefined);
    queue.done(first);
    await Promise.resolve();
    assert.equal(second, 'a');
  });

  it('a waiting worker gets a key as soon as one is added', async () => {
    const queue = new WorkQueue();
    const next = queue.next();
    queue.add('x');
    assert.equal(await next, 'x');
  });

  it('retries a failing key after a per-key exponential backoff, reset by forget()', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock, retry: { initialMs: 1_000, maxMs: 4_000 } });
    assert.deepEqual(
      [1, 2, 3, 4].map(() => queue.retryLater('a')),
      [1_000, 2_000, 4_000, 4_000],
    );
    assert.equal(queue.retryLater('b'), 1_000, 'each key has its own backoff');
    queue.forget('a');
    assert.equal(queue.retryLater('a'), 1_000);
    assert.equal(queue.length, 6, 'waiting retries count as queued');
    await clock.advance(1_000);
    assert.deepEqual([await queue.next(), await queue.next()].sort(), ['a', 'b']);
  });

  it('close() drops queued keys and retries and wakes every waiting worker', async () => {
    const clock = new ManualClock();
    const queue = new WorkQueue({ clock });
    const waiting = queue.next();
    queue.close();
    await assert.rejects(waiting, QueueClosed);
    queue.add('a');
    queue.retryLater('b');
    await clock.advance(10_000);
    assert.equal(queue.length, 0);
    assert.equal(clock.pending, 0);
    await assert.rejects(queue.next(), QueueClosed);
  });
});
