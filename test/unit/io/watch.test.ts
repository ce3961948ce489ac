// Debounced directory watching on a real filesystem: one call per burst of changes, none after close.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchDebounced } from '../../../src/io/watch.ts';
import { writeKubeletMount } from '../../../src/testbed/mount.ts';
import { eventually } from '../../support/kube.ts';

const root = mkdtempSync(join(tmpdir(), 'kcr-watch-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const DEBOUNCE_MS = 300;

describe('watchDebounced', () => {
  it('calls once for a ..data swap (a burst of events), after it has been quiet', async () => {
    const dir = join(root, 'swap');
    writeKubeletMount(dir, { 'config.yaml': 'a: 1\n' });
    let calls = 0;
    const watching = watchDebounced(dir, { depth: 0, debounceMs: DEBOUNCE_MS }, () => calls++);
    await watching.ready;
    writeKubeletMount(dir, { 'config.yaml': 'a: 2\n' });
    await eventually(async () => {
      await Promise.resolve();
      assert.equal(calls, 1);
    }, 5_000, 20);
    await sleep(DEBOUNCE_MS * 2);
    assert.equal(calls, 1);
    await watching.close();
  });

  it('a call still scheduled at close never happens', async () => {
    const dir = join(root, 'close');
    writeKubeletMount(dir, { 'config.yaml': 'a: 1\n' });
    let calls = 0;
    const watching = watchDebounced(dir, { depth: 0, debounceMs: 50 }, () => calls++);
    await watching.ready;
    watching.trigger();
    await watching.close();
    await sleep(200);
    assert.equal(calls, 0);
  });

  it('trigger schedules a call as a change would', async () => {
    const dir = join(root, 'trigger');
    writeKubeletMount(dir, { 'config.yaml': 'a: 1\n' });
    let calls = 0;
    const watching = watchDebounced(dir, { depth: 0, debounceMs: 50 }, () => calls++);
    await watching.ready;
    watching.trigger();
    watching.trigger();
    await sleep(200);
    assert.equal(calls, 1);
    await watching.close();
  });
});
