// The shared exponential backoff: doubling from the initial delay, capped, never non-finite.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from '../../../src/core/backoff.ts';

describe('backoffDelay', () => {
  const backoff = { initialMs: 500, maxMs: 30_000 };

  it('doubles from the initial delay for each failure, up to the cap', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8].map((failures) => backoffDelay(failures, backoff)),
      [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000],
    );
  });

  it('treats zero or negative failures as the first, and stays at the cap for huge counts', () => {
    assert.equal(backoffDelay(0, backoff), 500);
    assert.equal(backoffDelay(-3, backoff), 500);
    assert.equal(backoffDelay(1e9, backoff), 30_000);
  });
});
