// The system clock's sleep: its abort rule is what every loop's shutdown relies on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { systemClock } from '../../../src/io/clock.ts';

describe('the system clock', () => {
  it('sleeps for the time asked', async () => {
    const started = systemClock.monotonic();
    await systemClock.sleep(50, new AbortController().signal);
    assert.ok(systemClock.monotonic() - started >= 49);
  });

  it('ends a sleep early and without error when its signal aborts', async () => {
    const stop = new AbortController();
    const started = systemClock.monotonic();
    const sleeping = systemClock.sleep(60_000, stop.signal);
    stop.abort(new Error('shutting down'));
    await sleeping;
    assert.ok(systemClock.monotonic() - started < 1_000);
  });

  it('does not sleep at all on a signal that has already aborted', async () => {
    const started = systemClock.monotonic();
    await systemClock.sleep(60_000, AbortSignal.abort());
    assert.ok(systemClock.monotonic() - started < 1_000);
  });

  it('reads the wall clock', () => {
    assert.ok(Math.abs(systemClock.now() - Date.now()) < 1_000);
  });
});
