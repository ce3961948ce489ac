// Issue 24 section 2 on the real control plane: a certificate sidecar with empty state whose bootstrap token
// has expired (a new pod after the TTL) fails loudly, naming the fix, everywhere a person looks: its log, the
// Warning Event on its pod, /readyz, the metric behind the RebootstrapNeeded alert, and `status` on its
// output; then the fix it names (a fresh bootstrap token in the mounted Secret) gets it a certificate.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { parseMetrics, sampleValue } from '../../scripts/testbed/metrics.ts';
import { testCluster } from '../support/clusters.ts';
import { createBootstrapToken, eventually, uniqueName } from '../support/kube.ts';
import {
  bindRenewals,
  bootstrapKubeconfigFor,
  createPodStandIn,
  outputDir,
  prepareTarget,
  rotated,
  sidecarTestFile,
  TestApprover,
  writeKubeletMount,
  writeSidecarConfig,
} from '../support/sidecar.ts';

const execute = promisify(execFile);
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const target = testCluster('target');
const source = testCluster('source');
const { secrets, startSidecar, remember } = sidecarTestFile('bootstrap-refused');
const FIX =
  /fix: run kubeconfig-rotator bootstrap for this source and target again.*--bootstrap-with federated.*check --config/;

describe('a new pod after the bootstrap token expired', () => {
  it('says so, with the fix, in its log, Event, /readyz, metric and status; a fresh token gets it a certificate', async () => {
    const prepared = await prepareTarget(target, { expiration: new Date(Date.now() - 60_000) });
    const approver = new TestApprover(target.admin(), prepared.name);
    const pod = uniqueName('kcr-new-pod');
    const core = source.admin().makeApiClient(CoreV1Api);
    await createPodStandIn(source, 'default', pod);
    const sidecar = startSidecar(
      writeSidecarConfig(prepared, { sourceKubeconfig: source.state.kubeconfig, rereadIntervalSeconds: 3600 }),
      { env: { POD_NAME: pod, POD_NAMESPACE: 'default' } },
    );
    const status = () => execute(process.execPath, [CLI, 'status', outputDir(prepared)]);
    try {
      const needed = await sidecar.waitForLog((line) => line.msg.startsWith('re-bootstrap needed'), 30_000);
      assert.equal(needed.reason, 'BootstrapRefused');
      assert.equal(needed.level, 'error');
      assert.match(needed.msg, /the bootstrap token expired/);
      assert.match(needed.msg, FIX);

      const event = await eventually(async () => {
        const list = await core.listNamespacedEvent({
          namespace: 'default',
          fieldSelector: `involvedObject.name=${pod}`,
        });
        const found = list.items.find((item) => item.reason === 'BootstrapRefused');
        assert.ok(found, 'no BootstrapRefused Event yet');
        return found;
      });
      assert.equal(event.type, 'Warning');
      assert.match(event.message ?? '', FIX);
      assert.match(event.message ?? '', /\. Error: .*401/);

      const port = await sidecar.port();
      const ready = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), FIX);
      const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text());
      assert.equal(sampleValue(metrics, 'kubeconfig_rotator_rebootstrap_needed', { target: prepared.name }), 1);

      await assert.rejects(status(), (error: { code?: number; stderr?: string }) => {
        assert.equal(error.code, 1);
        assert.match(String(error.stderr), /nothing is published there: the sidecar has not obtained a credential/);
        assert.match(String(error.stderr), /BootstrapRefused or RebootstrapNeeded Event names the fix/);
        return true;
      });

      // The fix: bootstrap again (here: a fresh token in the mounted Secret, as `bootstrap` writes it).
      const fresh = await createBootstrapToken(target.admin());
      secrets.push(fresh.token.secret);
      await bindRenewals(target, prepared, fresh);
      writeKubeletMount(dirname(prepared.bootstrapKubeconfig), {
        kubeconfig: bootstrapKubeconfigFor(target, fresh.value),
      });
      const done = await sidecar.waitForLog(rotated, 30_000);
      assert.equal(done.authenticatedWith, 'bootstrap');
      await sidecar.waitForLog((line) => line.msg === 're-bootstrap no longer needed', 5_000);
      const after = await status();
      assert.match(after.stdout, new RegExp(`^identity: +CN=${prepared.identity.commonName}`, 'm'));
      assert.doesNotMatch(after.stdout, /^fix:/m);
      assert.equal((await fetch(`http://127.0.0.1:${String(port)}/readyz`)).status, 200);
    } finally {
      remember(prepared);
      await sidecar.stop();
      await approver.stop();
    }
  });
});
