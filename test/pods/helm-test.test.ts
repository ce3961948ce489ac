// `helm test` of both charts on real pods: the hooks (templates/tests/) run `kubeconfig-rotator check` in a Pod
// of the image, with the installed config and a ServiceAccount of their own. A healthy install passes (exit 0,
// the report in the pod's log); a broken one fails, and the pod's log names the cause: a sidecar installed
// without its bootstrap Secret, a sidecar whose identity the approver's policy denies, and an approver whose
// policy was broken by hand.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { uniqueName } from '../support/kube.ts';
import { nodeCluster } from '../support/node-cluster.ts';
import { bootstrapEast, eastTarget, installApprover, readPublished } from '../support/pods-charts.ts';
import { scratchDir } from '../support/sidecar.ts';

const cluster = nodeCluster();
const core = cluster.admin().makeApiClient(CoreV1Api);
const scratch = scratchDir('pods-helm-test');
const sourceName = uniqueName('src');
const source = { name: sourceName, identity: `kcr-agent-${sourceName}`, organization: 'kcr-agents' };
const namespaces = { target: uniqueName('kcr-target'), source: uniqueName('kcr-source') };
const SIDECAR_CHART = join(REPO_ROOT, 'charts', 'kubeconfig-rotator-sidecar');

/** `helm test RELEASE`: its exit (0 or not), and the log of the hook's pod (the check's report). */
async function helmTest(release: string, namespace: string, pod: string): Promise<{ ok: boolean; log: string }> {
  let ok = true;
  let output: string;
  try {
    output = await cluster.helm('test', release, '--namespace', namespace, '--timeout', '180s');
  } catch (error) {
    ok = false;
    const failed = error as { stdout?: string; stderr?: string };
    output = `${failed.stdout ?? ''}${failed.stderr ?? ''}`;
  }
  const log = await core.readNamespacedPodLog({ namespace, name: pod }).catch((error: unknown) => String(error));
  // Shown with the test's output: the real report of each run.
  process.stdout.write(`--- helm test ${release} (${ok ? 'passed' : 'failed'}): ${output.trim()}\n${log}\n`);
  return { ok, log };
}

before(async () => {
  await installApprover(cluster, scratch.path, 'approver', namespaces.target, source);
  const values = join(scratch.path, 'sidecar.yaml');
  writeFileSync(values, stringify({ targets: [eastTarget(source, { secret: { name: 'east-kubeconfig' } })] }));
  await cluster.helm(
    ...['install', 'sidecar', SIDECAR_CHART],
    ...['--namespace', namespaces.source, '--create-namespace', '-f', values],
  );
  await bootstrapEast(cluster, source.name, namespaces.source);
});

after(async () => {
  await cluster.helm('uninstall', 'sidecar', '--namespace', namespaces.source).catch(() => undefined);
  await cluster.helm('uninstall', 'approver', '--namespace', namespaces.target).catch(() => undefined);
  for (const name of Object.values(namespaces)) await core.deleteNamespace({ name }).catch(() => undefined);
  // Hook objects outlive an uninstall (as any Helm test hook's): their cluster-scoped ones are removed here.
  await cluster
    .kubectl('delete', 'clusterrole,clusterrolebinding', '-l', 'app.kubernetes.io/component=test', '--ignore-not-found')
    .catch(() => undefined);
  scratch.dispose();
});

describe('helm test on real pods', () => {
  it('a healthy install: both charts pass, every check in the log passing', async () => {
    await cluster.kubectl(
      ...['rollout', 'status', 'deployment/approver-kubeconfig-rotator-approver', '-n', namespaces.target],
      '--timeout=180s',
    );
    const deadline = Date.now() + 180_000;
    while ((await readPublished(core, namespaces.source, 'east-kubeconfig')) === undefined) {
      assert.ok(Date.now() < deadline, 'the sidecar never published east-kubeconfig');
      await sleep(500);
    }
    const approver = await helmTest('approver', namespaces.target, 'approver-kubeconfig-rotator-approver-test');
    assert.ok(approver.ok, approver.log);
    assert.match(approver.log, /\[ok\] {3}the installed policy is valid: \/etc\/kubeconfig-rotator\/policy\.yaml/);
    assert.match(approver.log, /\[ok\] {3}an approver replica holds the Lease/);
    assert.match(approver.log, /\[ok\] {3}no other approver decides the CSRs of policies \S+: [1-9]\d* CSR\(s\)/);
    assert.match(approver.log, /\d+ passed, 0 warned, 0 failed/);
    const sidecar = await helmTest('sidecar', namespaces.source, 'sidecar-kubeconfig-rotator-sidecar-test');
    assert.ok(sidecar.ok, sidecar.log);
    assert.match(sidecar.log, /\[ok\] {3}target east: reachable, its certificate verified/);
    assert.match(sidecar.log, /\[ok\] {3}target east: Secret \S+\/east-kubeconfig holds a valid credential: CN=/);
    assert.match(sidecar.log, /may write its Secrets and Events: create events in/);
    assert.match(sidecar.log, /\d+ passed, 0 warned, 0 failed/);
    // A re-run replaces the hook's objects (before-hook-creation) and passes again.
    assert.ok((await helmTest('sidecar', namespaces.source, 'sidecar-kubeconfig-rotator-sidecar-test')).ok);
  });

  it('a sidecar installed without its bootstrap Secret: helm test fails, the log names the missing Secret', async () => {
    const namespace = uniqueName('kcr-nobootstrap');
    const values = join(scratch.path, 'lonely.yaml');
    writeFileSync(values, stringify({ targets: [eastTarget(source, { secret: { name: 'east-kubeconfig' } })] }));
    try {
      await cluster.helm(
        ...['install', 'lonely', SIDECAR_CHART],
        ...['--namespace', namespace, '--create-namespace', '-f', values],
      );
      const result = await helmTest('lonely', namespace, 'lonely-kubeconfig-rotator-sidecar-test');
      assert.equal(result.ok, false);
      assert.match(
        result.log,
        /\[FAIL\] target east: the bootstrap kubeconfig is mounted: .* does not exist: the bootstrap Secret is missing/,
      );
      assert.match(result.log, /fix: run kubeconfig-rotator bootstrap for this source and target/);
      assert.match(result.log, /see: docs\/troubleshooting\.md#sidecar-bootstrap-kubeconfig/);
      assert.match(
        result.log,
        /\[FAIL\] target east: Secret \S+\/east-kubeconfig holds a valid credential: nothing published yet/,
      );
    } finally {
      await cluster.helm('uninstall', 'lonely', '--namespace', namespace).catch(() => undefined);
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  });

  it("a sidecar whose identity the approver's policy denies: helm test fails, the log quotes the denial", async () => {
    const namespace = uniqueName('kcr-denied');
    const values = join(scratch.path, 'denied.yaml');
    // A commonName the approver's policy for this source does not allow.
    const intruder = { ...source, identity: `intruder-${source.name}` };
    writeFileSync(values, stringify({ targets: [eastTarget(intruder, { secret: { name: 'east-kubeconfig' } })] }));
    try {
      await cluster.helm(
        ...['install', 'denied', SIDECAR_CHART],
        ...['--namespace', namespace, '--create-namespace', '-f', values],
      );
      await bootstrapEast(cluster, source.name, namespace);
      // The sidecar's first CSR is denied by the approver, which it reports as a Warning Event on its pod.
      const deadline = Date.now() + 120_000;
      for (;;) {
        const events = await core.listNamespacedEvent({ namespace, fieldSelector: 'reason=CertificateDenied' });
        if (events.items.length > 0) break;
        assert.ok(Date.now() < deadline, 'no CertificateDenied Event');
        await sleep(1000);
      }
      const result = await helmTest('denied', namespace, 'denied-kubeconfig-rotator-sidecar-test');
      assert.equal(result.ok, false);
      assert.match(result.log, /\[ok\] {3}target east: the bootstrap credential is accepted/);
      assert.match(
        result.log,
        /\[FAIL\] target east: Secret \S+\/east-kubeconfig holds a valid credential: nothing published yet/,
      );
      assert.match(
        result.log,
        new RegExp(
          `the sidecar's latest Warning Event says why \\(CertificateDenied: east: CSR \\S+ was denied: .*intruder-${source.name}`,
        ),
      );
    } finally {
      await cluster.helm('uninstall', 'denied', '--namespace', namespace).catch(() => undefined);
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  });

  it('an approver whose policy was broken by hand: helm test fails, the log names the problem', async () => {
    const namespace = uniqueName('kcr-badpolicy');
    const name = 'badpolicy-kubeconfig-rotator-approver';
    try {
      await installApprover(cluster, scratch.path, 'badpolicy', namespace, source);
      await core.patchNamespacedConfigMap({
        namespace,
        name: `${name}-policy`,
        body: [{ op: 'replace', path: '/data/policy.yaml', value: `policies:\n  - name: ${source.name}\n` }],
      });
      const result = await helmTest('badpolicy', namespace, `${name}-test`);
      assert.equal(result.ok, false);
      assert.match(
        result.log,
        /\[FAIL\] the installed policy is valid: \/etc\/kubeconfig-rotator\/policy\.yaml is invalid: /,
      );
      assert.match(result.log, /identity/);
      assert.match(result.log, /see: docs\/troubleshooting\.md#approver-policy-file/);
    } finally {
      await cluster.helm('uninstall', 'badpolicy', '--namespace', namespace).catch(() => undefined);
      await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    }
  });
});
