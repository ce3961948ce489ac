// Two approver processes on one Lease: exactly one decides; kill -9 it and the other takes over, and every
// CSR created meanwhile is decided exactly once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertificatesV1Api, CoordinationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_TIMING } from '../../src/io/kube/leader-election.ts';
import { kubeConfigFor } from '../support/kubeconfig.ts';
import {
  agentRequest,
  approverAccount,
  mountPolicy,
  ApproverProcess,
  createCsr,
  deleteRunCsrs,
  waitForDecision,
  type ApproverAccount,
} from '../support/approver-process.ts';
import { testCluster } from '../support/clusters.ts';
import { createBootstrapToken, eventually, statusCode, uniqueName } from '../support/kube.ts';

const target = testCluster('target');
const admin = target.admin();
const certificates = admin.makeApiClient(CertificatesV1Api);
const run = uniqueName('kcr-failover');
const dir = mkdtempSync(join(tmpdir(), 'kcr-failover-'));
// A candidate retries every retryPeriod x [1, 2.2); it measures the lease from when it saw the last renewal.
const TAKEOVER_BOUND_MS = DEFAULT_TIMING.leaseDurationMs + DEFAULT_TIMING.retryPeriodMs * 2.2 + 1_000;

const createAgentCsr = (as: KubeConfig) => createCsr(as, run, { pem: agentRequest(`${run}-agent`) });

async function approvals(name: string): Promise<number> {
  const csr = await certificates.readCertificateSigningRequest({ name });
  return (csr.status?.conditions ?? []).filter(
    (condition) => condition.type === 'Approved' || condition.type === 'Denied',
  ).length;
}

describe('two approver replicas on one Lease', () => {
  let account: ApproverAccount;
  let replicas: [ApproverProcess, ApproverProcess];
  let asBootstrap: KubeConfig;

  before(async () => {
    const bootstrap = await createBootstrapToken(admin);
    asBootstrap = kubeConfigFor(target.endpoint(), { token: bootstrap.value });
    account = await approverAccount(target, 'kubernetes.io/kube-apiserver-client', dir);
    const policy = mountPolicy(
      join(dir, 'policy'),
      `policies:\n  - name: failover\n    bootstrap: { groups: ['${bootstrap.group}'] }\n    identity: { commonNames: ['${run}-*'] }\n`,
    );
    replicas = [
      new ApproverProcess({ account, policy, logDir: dir, identity: `${run}-a` }),
      new ApproverProcess({ account, policy, logDir: dir, identity: `${run}-b` }),
    ];
    await Promise.all(
      replicas.map((replica) =>
        replica.waitForLog((line) => line.msg === 'lease holder observed' && line.holder !== '(none)'),
      ),
    );
  });

  after(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await account.delete();
    await deleteRunCsrs(admin, run);
    rmSync(dir, { recursive: true, force: true });
  });

  const leaderAndFollower = async () => {
    const leading = await Promise.all(replicas.map((replica) => replica.metric('leader')));
    assert.deepEqual([...leading].sort(), [0, 1], 'exactly one leads');
    const [first, second] = replicas;
    return leading[0] === 1 ? { leader: first, follower: second } : { leader: second, follower: first };
  };

  it('exactly one replica leads and decides; both are ready', async () => {
    const { leader, follower } = await leaderAndFollower();
    const names = await eventually(() => Promise.all(Array.from({ length: 5 }, () => createAgentCsr(asBootstrap))));
    for (const name of names) assert.equal((await waitForDecision(admin, name)).type, 'Approved');
    // The API can show a decision before the leader's log line for it has reached us.
    for (const name of names) await leader.waitForLog((line) => line.msg === 'decision written' && line.csr === name);
    assert.deepEqual(
      names.map((name) => [leader.decisionsWritten(name), follower.decisionsWritten(name)]),
      names.map(() => [1, 0]),
    );
    // Readiness is the informer's first sync, which a loaded machine may finish a moment after the lease.
    for (const replica of replicas) {
      await eventually(async () => {
        assert.equal((await replica.get('/readyz')).status, 200);
      });
    }
    const lease = await admin
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: account.leaseName, namespace: account.namespace });
    assert.equal(lease.spec?.holderIdentity, leader.identity);
    assert.equal(lease.spec.leaseDurationSeconds, 15);
  });

  // Issue 22: it could take any Lease in its namespace (kube-controller-manager's, installed in kube-system).
  it('its RBAC holds its own Lease only: another one in its namespace can be neither read, updated nor created over', async () => {
    const other = { name: `${run}-other`, namespace: account.namespace };
    const leases = admin.makeApiClient(CoordinationV1Api);
    await leases.createNamespacedLease({
      ...other,
      body: { metadata: { name: other.name }, spec: { holderIdentity: 'kcm' } },
    });
    const asApprover = kubeConfigFor(target.endpoint(), { token: account.token }).makeApiClient(CoordinationV1Api);
    const code = (call: Promise<unknown>) =>
      call.then(
        () => 200,
        (error: unknown) => statusCode(error),
      );
    assert.equal(await code(asApprover.readNamespacedLease(other)), 403);
    const taken = { metadata: { name: other.name }, spec: { holderIdentity: `${run}-a` } };
    assert.equal(await code(asApprover.replaceNamespacedLease({ ...other, body: taken })), 403);
    // create cannot be limited by name: it makes a Lease that does not exist, never takes one that does.
    assert.equal(await code(asApprover.createNamespacedLease({ namespace: other.namespace, body: taken })), 409);
    assert.equal((await leases.readNamespacedLease(other)).spec?.holderIdentity, 'kcm');
    assert.equal(
      await code(asApprover.readNamespacedLease({ name: account.leaseName, namespace: account.namespace })),
      200,
    );
  });

  it('after kill -9 of the leader the other takes over within the lease time plus one retry, and every CSR created meanwhile is decided exactly once', async (t) => {
    const { leader, follower } = await leaderAndFollower();
    const killedAt = Date.now();
    leader.child.kill('SIGKILL');
    await leader.exited;
    const created: string[] = [];
    let tookOver: number | undefined;
    // CSRs keep coming while no replica leads, and for 2 s after the takeover.
    await eventually(
      async () => {
        created.push(await createAgentCsr(asBootstrap));
        const line = follower.lines.find((entry) => entry.msg === 'started leading');
        if (line !== undefined) tookOver ??= Date.parse(String(line.time));
        return tookOver !== undefined && Date.now() >= tookOver + 2_000;
      },
      { timeoutMs: 60_000, intervalMs: 400, description: 'a takeover within a minute' },
    );
    const takeoverMs = (tookOver ?? assert.fail('no takeover')) - killedAt;
    t.diagnostic(
      `takeover ${String(takeoverMs)} ms after kill -9 (lease ${String(DEFAULT_TIMING.leaseDurationMs)} ms, retry ${String(DEFAULT_TIMING.retryPeriodMs)} ms); ${String(created.length)} CSRs created meanwhile`,
    );
    assert.ok(takeoverMs <= TAKEOVER_BOUND_MS, `takeover took ${String(takeoverMs)} ms`);
    for (const name of created) assert.equal((await waitForDecision(admin, name)).type, 'Approved', name);
    for (const name of created) {
      assert.equal(await approvals(name), 1, `${name} carries one decision`);
      const written = (line: { msg?: unknown; csr?: unknown }) => line.msg === 'decision written' && line.csr === name;
      await Promise.any([leader.waitForLog(written), follower.waitForLog(written)]);
      assert.equal(follower.decisionsWritten(name) + leader.decisionsWritten(name), 1, `${name} was decided once`);
    }
    const lease = await admin
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: account.leaseName, namespace: account.namespace });
    assert.equal(lease.spec?.holderIdentity, follower.identity);
    assert.ok((lease.spec.leaseTransitions ?? 0) >= 1);
    assert.equal(await follower.metric('leader'), 1);
  });
});
