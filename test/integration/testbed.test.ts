// The test control plane's own failure reporting: a start that fails names the process, shows the tail of
// its log, and leaves nothing running.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { isComponentRunning, readClusterState, startClusters } from '../../scripts/testbed/cluster.ts';

describe('test control plane start failures', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'kcr-testbed-'));
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  it('names the process that failed, shows its log, and stops what had started', async () => {
    const realBin = await ensureControlPlane();
    const binDir = join(scratch, 'bin');
    const root = join(scratch, 'clusters');
    mkdirSync(binDir);
    symlinkSync(join(realBin, 'etcd'), join(binDir, 'etcd'));
    const broken = join(binDir, 'kube-apiserver');
    writeFileSync(broken, '#!/bin/sh\necho "E1128 unable to load client CA file: boom" >&2\nexit 3\n');
    chmodSync(broken, 0o755);

    await assert.rejects(startClusters(['broken'], { binDir, root }), (error: Error) => {
      assert.match(
        error.message,
        /^cluster broken: kube-apiserver exited with code 3; last lines of .*kube-apiserver\.log:/,
      );
      assert.match(error.message, /unable to load client CA file: boom/);
      return true;
    });
    const state = readClusterState(root, 'broken');
    assert.ok(state?.processes.etcd !== undefined, 'etcd had been started');
    assert.equal(isComponentRunning(state, 'etcd'), false, 'etcd was stopped after the failure');
  });
});
