// The sidecar's main path against the real control plane: first certificate with the bootstrap token,
// renewals with the certificate itself, restarts, and a client that never notices a rotation.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { testCluster } from '../support/clusters.ts';
import { eventually } from '../support/eventually.ts';
import { statusCode } from '../support/kube.ts';
import {
  outputDir,
  prepareTarget,
  rotated,
  sidecarTestFile,
  TestApprover,
  writeSidecarConfig,
  type PreparedTarget,
  type SidecarProcess,
} from '../support/sidecar.ts';

const run = promisify(execFile);
const target = testCluster('target');
const source = testCluster('source');
const { startSidecar, remember } = sidecarTestFile('sidecar-rotation');
let kubectl = '';

async function whoAmI(kubeconfig: string): Promise<{ username: string; groups: string[] }> {
  const { stdout } = await run(kubectl, ['--kubeconfig', kubeconfig, 'auth', 'whoami', '-o', 'json']);
  const review = JSON.parse(stdout) as { status: { userInfo: { username: string; groups: string[] } } };
  return review.status.userInfo;
}

before(async () => {
  kubectl = join(await ensureControlPlane(), 'kubectl');
});

describe('first certificate and renewals', () => {
  let prepared: PreparedTarget;
  let approver: TestApprover;
  let sidecar: SidecarProcess;
  const secretName = 'kcr-rotation-east';

  before(async () => {
    prepared = await prepareTarget(target);
    approver = new TestApprover(target.admin(), prepared.name);
    const config = writeSidecarConfig(prepared, {
      secret: { namespace: 'default', name: `${secretName}-${prepared.name}` },
      sourceKubeconfig: source.state.kubeconfig,
      forceIntervalSeconds: 3,
    });
    sidecar = startSidecar(config);
  });
  after(async () => {
    remember(prepared);
    await sidecar.stop();
    await approver.stop();
  });

  it('gets its first certificate with the bootstrap token, as exactly the configured identity', async () => {
    const first = await sidecar.waitForLog(rotated);
    assert.equal(first.authenticatedWith, 'bootstrap');
    const csr = approver.seen.get(String(first.csr));
    assert.equal(csr?.spec.username, `system:bootstrap:${prepared.bootstrap.token.id}`);

    const user = await whoAmI(join(outputDir(prepared), 'kubeconfig'));
    assert.equal(user.username, prepared.identity.commonName);
    assert.deepEqual(user.groups.sort(), [...prepared.identity.organizations, 'system:authenticated'].sort());

    const viaClientNode = new KubeConfig();
    viaClientNode.loadFromFile(join(outputDir(prepared), 'kubeconfig'));
    const review = await viaClientNode.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    assert.equal(review.status?.userInfo?.username, prepared.identity.commonName);
  });

  it('publishes the same credential to the Secret, whose config key works as a kubeconfig', async () => {
    const secret = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: 'default', name: `${secretName}-${prepared.name}` });
    assert.equal(secret.metadata?.labels?.['app.kubernetes.io/managed-by'], 'kubeconfig-rotator');
    assert.match(secret.metadata.annotations?.['kubeconfig-rotator.io/serial'] ?? '', /^[0-9A-F]+$/);
    const kubeconfig = join(prepared.dir, 'from-secret.kubeconfig');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(kubeconfig, Buffer.from(secret.data?.config ?? '', 'base64'), { mode: 0o600 });
    assert.equal((await whoAmI(kubeconfig)).username, prepared.identity.commonName);
  });

  it('renews with the current certificate, not the bootstrap token, which can then be deleted', async () => {
    await target
      .admin()
      .makeApiClient(CoreV1Api)
      .deleteNamespacedSecret({ namespace: 'kube-system', name: `bootstrap-token-${prepared.bootstrap.token.id}` });
    const countBefore = sidecar.count(rotated);
    const renewal = await sidecar.waitForLog(
      (line) => rotated(line) && line.authenticatedWith === 'current',
      30_000,
      1,
    );
    await sidecar.waitForLog(rotated, 30_000, sidecar.lines.indexOf(renewal) + 1);
    assert.ok(sidecar.count(rotated) >= countBefore + 1);
    const renewals = sidecar.lines.filter((line) => rotated(line) && line.authenticatedWith === 'current');
    assert.ok(renewals.length >= 2);
    for (const line of renewals)
      assert.equal(approver.seen.get(String(line.csr))?.spec.username, prepared.identity.commonName);
    assert.equal((await whoAmI(join(outputDir(prepared), 'kubeconfig'))).username, prepared.identity.commonName);
  });

  it("`status` describes the directory and the Secret, the Secret with the sidecar's own next rotation", async () => {
    const cli = new URL('../../src/cli.ts', import.meta.url).pathname;
    const fromDirectory = JSON.parse(
      (await run(process.execPath, [cli, 'status', outputDir(prepared), '--json'])).stdout,
    ) as Record<string, unknown>;
    assert.equal(fromDirectory.identity, `CN=${prepared.identity.commonName}, O=kcr-agents`);
    assert.equal(fromDirectory.keyMatches, true);
    assert.equal(fromDirectory.nextRotationFrom, 'default rule');
    const { stdout } = await run(process.execPath, [
      cli,
      'status',
      '--secret',
      `default/${secretName}-${prepared.name}`,
      '--kubeconfig',
      source.state.kubeconfig,
    ]);
    assert.match(stdout, new RegExp(`^identity: +CN=${prepared.identity.commonName}, O=kcr-agents$`, 'm'));
    assert.match(stdout, /^not after: +\S+ \(\d+m \d+s left\)$/m);
    assert.match(stdout, /^next rotation: +\S+ \((in|due) .*; sidecar\)$/m);
  });

  it('reports readiness and metrics', async () => {
    const port = await sidecar.port();
    const ready = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
    assert.equal(ready.status, 200);
    assert.match(await ready.text(), new RegExp(`^ok\\n${prepared.name}: ready: CN=${prepared.identity.commonName}`));
    const metrics = await (await fetch(`http://127.0.0.1:${String(port)}/metrics`)).text();
    assert.match(metrics, new RegExp(`kubeconfig_rotator_ready\\{target="${prepared.name}"\\} 1`));
    assert.match(
      metrics,
      new RegExp(`kubeconfig_rotator_rotations_total\\{target="${prepared.name}",result="success"\\} [1-9]`),
    );
    assert.match(
      metrics,
      new RegExp(`kubeconfig_rotator_certificate_not_after_timestamp_seconds\\{target="${prepared.name}"\\} \\d{10}`),
    );
    assert.match(
      metrics,
      new RegExp(`kubeconfig_rotator_next_rotation_timestamp_seconds\\{target="${prepared.name}"\\} \\d{10}`),
    );
    assert.match(
      metrics,
      new RegExp(`kubeconfig_rotator_last_success_timestamp_seconds\\{target="${prepared.name}"\\} \\d{10}`),
    );
    assert.match(
      metrics,
      new RegExp(`kubeconfig_rotator_rotation_duration_seconds_count\\{target="${prepared.name}"\\} [1-9]`),
    );
  });

  it('stops on SIGTERM within seconds, exit status 0', async () => {
    const started = Date.now();
    const exit = await sidecar.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - started < 5_000, `took ${String(Date.now() - started)} ms`);
  });
});

describe('restarts', () => {
  it('with a valid certificate: no new CSR', async () => {
    const prepared = await prepareTarget(target);
    const approver = new TestApprover(target.admin(), prepared.name);
    try {
      const config = writeSidecarConfig(prepared);
      const first = startSidecar(config);
      await first.waitForLog(rotated);
      await first.stop();
      const requests = approver.seen.size;

      const second = startSidecar(config);
      const found = await second.waitForLog((line) => line.msg === 'found a valid certificate');
      assert.equal(found.from, `directory ${outputDir(prepared)}`);
      assert.ok(Date.parse(String(found.nextRotation)) > Date.now(), 'its next rotation is at its deadline, not now');
      await second.waitForLog((line) => line.msg === 'ready');
      // A CSR of the restart would be created before it is ready: a list the test approver begins after that
      // would see it.
      const passes = approver.passes;
      await eventually(() => approver.passes >= passes + 2, { description: "the test approver's next list" });
      assert.equal(second.count(rotated), 0);
      assert.equal(approver.seen.size, requests, 'no CSR was created after the restart');
      await second.stop();
    } finally {
      remember(prepared);
      await approver.stop();
    }
  });

  it('while its CSR is pending: the same CSR completes after the restart', async () => {
    const prepared = await prepareTarget(target);
    const approver = new TestApprover(target.admin(), prepared.name);
    approver.decide = () => 'ignore';
    try {
      const config = writeSidecarConfig(prepared);
      const first = startSidecar(config);
      await eventually(() => approver.seen.size > 0, { timeoutMs: 30_000, intervalMs: 50, description: 'its CSR' });
      const [pendingName] = [...approver.seen.keys()];
      await first.stop();

      const second = startSidecar(config);
      approver.decide = () => 'approve';
      const done = await second.waitForLog(rotated);
      assert.equal(done.csr, pendingName);
      assert.equal(approver.seen.size, 1, 'exactly one CSR was ever created');
      await second.stop();
    } finally {
      remember(prepared);
      await approver.stop();
    }
  });
});

describe('a long-lived client of the published kubeconfig', () => {
  it('sees no failed call across at least 5 forced rotations (client-node and kubectl, file references)', async () => {
    const prepared = await prepareTarget(target);
    const approver = new TestApprover(target.admin(), prepared.name);
    const sidecar = startSidecar(writeSidecarConfig(prepared, { forceIntervalSeconds: 2 }));
    try {
      await sidecar.waitForLog(rotated);
      const kubeconfig = join(outputDir(prepared), 'kubeconfig');
      // Loaded once, like an agent that never restarts; client-node re-reads the certificate files per request.
      const client = new KubeConfig();
      client.loadFromFile(kubeconfig);
      const api = client.makeApiClient(AuthenticationV1Api);
      let calls = 0;
      const failures: string[] = [];
      let kubectlCalls = 0;
      const serials = new Set<string>();
      const stopAt = sidecar.count(rotated) + 5;
      const clientNodeLoop = (async () => {
        while (sidecar.count(rotated) < stopAt) {
          try {
            const review = await api.createSelfSubjectReview({ body: {} });
            if (review.status?.userInfo?.username !== prepared.identity.commonName)
              failures.push(`client-node saw ${String(review.status?.userInfo?.username)}`);
            calls++;
          } catch (error) {
            failures.push(`client-node: ${String(statusCode(error) ?? (error as Error).message)}`);
          }
          await sleep(10);
        }
      })();
      const kubectlLoop = (async () => {
        while (sidecar.count(rotated) < stopAt) {
          try {
            const user = await whoAmI(kubeconfig);
            if (user.username !== prepared.identity.commonName) failures.push(`kubectl saw ${user.username}`);
            kubectlCalls++;
          } catch (error) {
            failures.push(`kubectl: ${(error as Error).message}`);
          }
        }
      })();
      await Promise.all([clientNodeLoop, kubectlLoop]);
      for (const line of sidecar.lines.filter(rotated)) serials.add(String(line.serial));
      assert.deepEqual(failures, []);
      assert.ok(serials.size >= 6, `saw ${String(serials.size)} certificates`);
      assert.ok(calls > 100, `only ${String(calls)} client-node calls`);
      assert.ok(kubectlCalls > 5, `only ${String(kubectlCalls)} kubectl calls`);
    } finally {
      remember(prepared);
      await sidecar.stop();
      await approver.stop();
    }
  });
});
