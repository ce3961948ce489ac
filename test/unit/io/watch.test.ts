// Debounced directory watching on a real filesystem: one call per burst of changes, none after close.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { watchDebounced, type DebouncedWatch } from '../../../src/io/watch.ts';
import { writeKubeletMount } from '../../../scripts/testbed/mount.ts';
import { consistently, eventually } from '../../support/eventually.ts';

const root = mkdtempSync(join(tmpdir(), 'kcr-watch-'));
// Closed here too, so that a failed test leaves no watcher holding the process open.
const opened: DebouncedWatch[] = [];
after(async () => {
  await Promise.all(opened.map((watching) => watching.close()));
  rmSync(root, { recursive: true, force: true });
});

const DEBOUNCE_MS = 300;

/** A watch of a fresh mounted directory, once it is ready, and how often it has called. */
async function watched(name: string, debounceMs: number) {
  const dir = join(root, name);
  writeKubeletMount(dir, { 'config.yaml': 'a: 1\n' });
  let calls = 0;
  const watching = watchDebounced(dir, { depth: 0, debounceMs }, () => calls++);
  opened.push(watching);
  await watching.ready;
  return { dir, watching, calls: () => calls };
}

describe('watchDebounced', () => {
  it('calls once for a ..data swap (a burst of events), after it has been quiet', async () => {
    const { dir, watching, calls } = await watched('swap', DEBOUNCE_MS);
    writeKubeletMount(dir, { 'config.yaml': 'a: 2\n' });
    await eventually(() => calls() > 0, { timeoutMs: 5_000, intervalMs: 20, description: 'a call for the swap' });
    // A second call for the same burst would come within one debounce of the first.
    await consistently(() => calls() === 1, { forMs: DEBOUNCE_MS * 2, description: 'one call for one swap' });
    await watching.close();
  });

  it('a call still scheduled at close never happens', async () => {
    const { watching, calls } = await watched('close', 50);
    const control = await watched('close-control', 50);
    watching.trigger();
    control.watching.trigger();
    await watching.close();
    // The call the closed watch would have made was due when the open one, triggered with it, made its own.
    await eventually(() => control.calls() === 1, { timeoutMs: 5_000, intervalMs: 5, description: 'the open call' });
    await consistently(() => calls() === 0, { forMs: 200, description: 'no call after close' });
    await control.watching.close();
  });

  it('trigger schedules a call as a change would', async () => {
    const { watching, calls } = await watched('trigger', 50);
    watching.trigger();
    watching.trigger();
    await eventually(() => calls() > 0, { timeoutMs: 5_000, intervalMs: 5, description: 'a call for the triggers' });
    await consistently(() => calls() === 1, { forMs: 200, description: 'one call for two triggers' });
    await watching.close();
  });
});
