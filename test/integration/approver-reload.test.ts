// Policy hot reload in a running approver, with the policy mounted as the kubelet mounts a ConfigMap.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeConfigFor } from '../support/kubeconfig.ts';
import {
  agentRequest,
  ApproverProcess,
  createCsr,
  deleteRunCsrs,
  startLeadingApprover,
  waitForDecision,
  type ApproverAccount,
} from '../support/approver-process.ts';
import { writeKubeletMount } from '../../scripts/testbed/mount.ts';
import { testCluster } from '../support/clusters.ts';
import { createBootstrapToken, eventually, uniqueName, type TestBootstrapToken } from '../support/kube.ts';

const target = testCluster('target');
const admin = target.admin();
const run = uniqueName('kcr-reload');
const dir = mkdtempSync(join(tmpdir(), 'kcr-reload-'));
const endpoint = target.endpoint();

const policyFor = (tokens: readonly TestBootstrapToken[]) =>
  `policies:\n${tokens.map((token, index) => `  - name: source-${String(index)}\n    bootstrap: { groups: ['${token.group}'] }\n    identity: { commonNames: ['${run}-*'] }\n`).join('')}`;

const createAgentCsr = (as: KubeConfig) => createCsr(as, run, { pem: agentRequest(`${run}-agent`) });

describe('policy hot reload in a running approver', () => {
  let account: ApproverAccount;
  let approver: ApproverProcess;
  let first: TestBootstrapToken;
  let second: TestBootstrapToken;
  const policyDir = join(dir, 'policy');

  before(async () => {
    [first, second] = await Promise.all([createBootstrapToken(admin), createBootstrapToken(admin)]);
    ({ account, approver } = await startLeadingApprover(
      target,
      'kubernetes.io/kube-apiserver-client',
      dir,
      policyFor([first]),
    ));
  });

  after(async () => {
    await approver.stop();
    await account.delete();
    await deleteRunCsrs(admin, run);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a valid change takes effect without a restart: a CSR left pending is approved under the new policy', async () => {
    const pending = await eventually(() => createAgentCsr(kubeConfigFor(endpoint, { token: second.value })));
    await approver.waitForLog((line) => line.msg === 'no policy applies; left pending' && line.csr === pending);
    writeKubeletMount(policyDir, { 'policy.yaml': policyFor([first, second]) });
    const decision = await waitForDecision(admin, pending);
    assert.match(decision.message, /^policy source-1 allows a first certificate/);
    await approver.waitForLog((line) => line.msg === 'policy reloaded' && line.generation === 2);
    assert.equal(await approver.metric('policy_generation'), 2);
    assert.equal(approver.child.exitCode, null, 'still the same process');
  });

  it('an invalid new file is rejected, logged and counted, and the policy in force keeps working', async () => {
    writeKubeletMount(policyDir, {
      'policy.yaml':
        'policies:\n  - name: source-0\n    bootstrap: { groups: [] }\n    identity: { commonNames: [] }\n    colour: blue\n',
    });
    const rejected = await approver.waitForLog(
      (line) => line.msg === 'new policy file rejected; the current policy stays in force',
    );
    assert.deepEqual(rejected.problems, [
      'policies[0].identity.commonNames: must allow at least one common name (line 4)',
      'policies[0].colour: unknown field (line 5)',
    ]);
    assert.equal(await approver.metric('policy_reload_errors_total'), 1);
    assert.equal(await approver.metric('policy_generation'), 2);
    for (const token of [first, second]) {
      const name = await createAgentCsr(kubeConfigFor(endpoint, { token: token.value }));
      assert.equal((await waitForDecision(admin, name)).type, 'Approved');
    }
  });
});
