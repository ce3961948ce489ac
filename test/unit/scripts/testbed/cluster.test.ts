// Which named clusters run: what the demo and the test global setup record, to stop later only the ones they started.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { COMPONENTS, runningClusters } from '../../../../scripts/testbed/cluster.ts';

const root = mkdtempSync(join(tmpdir(), 'kcr-clusters-'));
const children: ReturnType<typeof spawn>[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** A cluster state whose every component is a process with `pid`. */
function writeState(name: string, pid: number): void {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const processes = Object.fromEntries(
    COMPONENTS.map((component) => [component, { pid, bin: 'x', args: [], log: 'x' }]),
  );
  writeFileSync(join(dir, 'state.json'), JSON.stringify({ name, dir, processes }));
}

describe('runningClusters', () => {
  it('lists the named clusters whose recorded processes all run, in the order given', async () => {
    // A process whose command line names the cluster's directory, as the cluster's own processes do.
    const up = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)', join(root, 'up')], { stdio: 'ignore' });
    children.push(up);
    await new Promise((resolve) => up.once('spawn', resolve));
    writeState('up', up.pid ?? 0);
    // The same pid, but recorded for another directory: a reused pid is not that cluster.
    writeState('other', up.pid ?? 0);
    assert.deepEqual(runningClusters(root, ['absent', 'other', 'up']), ['up']);
    assert.deepEqual(runningClusters(root, []), []);
  });
});
