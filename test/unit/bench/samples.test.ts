// The benchmarks' worker pool: N workers taking from one queue.
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { withWorkers } from '../../../bench/samples.ts';

describe('withWorkers', () => {
  it('works on every item once, never more than `workers` at a time, and all are done when it resolves', async () => {
    const items = Array.from({ length: 100 }, (_, index) => index);
    const done: number[] = [];
    let running = 0;
    let most = 0;
    await withWorkers(items, 7, async (item) => {
      running++;
      most = Math.max(most, running);
      await tick();
      running--;
      done.push(item);
    });
    assert.equal(most, 7);
    assert.deepEqual(
      [...done].sort((a, b) => a - b),
      items,
    );
  });

  it('after a failure no worker takes another item; it ends once the others finish and throws that error', async () => {
    const failure = new Error('item 3 failed');
    const started: number[] = [];
    let finished = 0;
    await assert.rejects(
      withWorkers(
        Array.from({ length: 100 }, (_, index) => index),
        4,
        async (item) => {
          started.push(item);
          await tick();
          if (item === 3) throw failure;
          await tick();
          finished++;
        },
      ),
      (error) => error === failure,
    );
    assert.deepEqual(started, [0, 1, 2, 3]);
    assert.equal(finished, 3);
  });
});
