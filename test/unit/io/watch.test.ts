// Debounced directory watching on a real filesystem: one call per burst of changes, none after close.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { watchDebounced } from '../../../src/io/watch.ts';
import { writeKubeletMount } from '../../../scripts/testbed/mount.ts';
import { eventually } from '../../support/kube.ts';

const root = mkdtempSync(join(tmpdir(), 'kcr-watch-'));
after(() => {
  rmSync(root, { recursive: true, force: true });
});

const DEBOUNCE_MS = 300;

/** A watch of a fresh mounted directory, once it is ready, and how often it has called. */
async function watched(name: string, debounceMs: number) {
  const dir = join(root, name);
  writeKubeletMount(dir, { 'config.yaml': 'a: 1\n' });
  let calls = 0;
  const watching = watchDebounced(dir, { depth: 0, debounceMs }, () => calls++);
  await watching.ready;
  return { dir, watching, calls: () => calls };
}

describe('watchDebounced', () => {
  it('calls once for a ..data swap (a burst of events), after it has been quiet', async () => {
    const { dir, watching, calls } = await watched('swap', DEBOUNCE_MS);
    writeKubeletMount(dir, { 'config.yaml': 'a: 2\n' });
    await eventually(
      async () => {
        await Promise.resolve();
        assert.equal(calls(), 1);
      },
      5_000,
      20,
    );
    await sleep(DEBOUNCE_MS * 2);
    assert.equal(calls(), 1);
    await watching.close();
  });

  it('a call still scheduled at close never happens', async () => {
    const { watching, calls } = await watched('close', 50);
    watching.trigger();
    await watching.close();
    await sleep(200);
    assert.equal(calls(), 0);
  });

  it('trigger schedules a call as a change would', async () => {
    const { watching, calls } = await watched('trigger', 50);
    watching.trigger();
    watching.trigger();
    await sleep(200);
    assert.equal(calls(), 1);
    await watching.close();
  });
});
