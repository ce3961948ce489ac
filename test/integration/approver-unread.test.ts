// What the approver keeps of CSRs no policy could apply to (issue 22), through the real apiserver: anyone allowed
// to create CSRs can leave thousands pending for 24 hours, so their requests are never read and each keeps a few
// hundred bytes, whatever its size; a policy reload that applies to them reads them then.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertificatesV1Api } from '@kubernetes/client-node';
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
import { emptyExtensions, requestPem } from '../support/hostile-csr.ts';
import { eventually, uniqueName } from '../support/kube.ts';

const target = testCluster('target');
const admin = target.admin();
const run = uniqueName('kcr-unread');
const dir = mkdtempSync(join(tmpdir(), 'kcr-unread-'));
// A signer of this test's own: the approver caches only the CSRs created here.
const signerName = `kubeconfig-rotator.test/${run}`;
const MANY_EXTENSIONS = 150;
const MEGABYTE = 10;
// What one unread CSR may keep (issue 22: a few hundred bytes at most, whatever its size).
const MAX_BYTES_PER_UNREAD = 512;

const policyFor = (bootstrapUsers: readonly string[]) =>
  [
    `signerName: ${signerName}`,
    'policies:',
    '  - name: agents',
    `    bootstrap: { users: [${bootstrapUsers.map((user) => JSON.stringify(user)).join(', ')}] }`,
    `    identity: { commonNames: ['${run}-*'] }`,
    '',
  ].join('\n');

describe('CSRs no policy could apply to are kept unread', () => {
  let account: ApproverAccount;
  let approver: ApproverProcess;
  const policyDir = join(dir, 'policy');
  const created: { name: string; kind: 'extensions' | 'junk' }[] = [];

  before(async () => {
    // Nobody yet: the admin who creates the CSRs below is no bootstrap user of it.
    ({ account, approver } = await startLeadingApprover(target, signerName, dir, policyFor([`${run}-nobody`])));
  });

  after(async () => {
    await approver.stop();
    await account.delete();
    await deleteRunCsrs(admin, run);
    rmSync(dir, { recursive: true, force: true });
  });

  it('many large pending CSRs of a requester no policy applies to keep a few hundred bytes each', async () => {
    // About 16 KiB with 1,400 extensions (valid for Kubernetes), and 1 MiB: a valid request followed by junk,
    // which Go's PEM decoder ignores.
    const pems = {
      extensions: requestPem({ extensions: emptyExtensions(1_400) }),
      junk: `${agentRequest(`${run}-junk`)}${'A'.repeat(1 << 20)}`,
    };
    const kinds = [
      ...Array.from({ length: MANY_EXTENSIONS }, () => 'extensions' as const),
      ...Array.from({ length: MEGABYTE }, () => 'junk' as const),
    ];
    // A few at a time: each create goes through the apiserver into etcd.
    for (let start = 0; start < kinds.length; start += 8)
      created.push(
        ...(await Promise.all(
          kinds.slice(start, start + 8).map(async (kind) => ({
            kind,
            name: await createCsr(admin, run, { pem: pems[kind], signerName, usages: ['client auth'] }),
          })),
        )),
      );
    const total = kinds.length;
    await eventually(
      async () => {
        assert.equal(await approver.metric('cache_csrs', 'kept="unread"'), total);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.equal(await approver.metric('cache_csrs', 'kept="read"'), 0, 'no request was read');
    const bytes = await approver.metric('cache_bytes', 'kept="unread"');
    assert.ok(
      bytes / total <= MAX_BYTES_PER_UNREAD,
      `${String(Math.round(bytes / total))} bytes kept per CSR, more than ${String(MAX_BYTES_PER_UNREAD)}`,
    );
    // Left pending, and reported so.
    await approver.waitForLog(
      (line) => line.msg === 'no policy applies; left pending' && line.csr === created[0]?.name,
    );
  });

  it('a policy reload that applies to their requester reads them: each is denied for its size or its count', async () => {
    const [first = assert.fail('no CSR')] = created;
    const { spec } = await admin.makeApiClient(CertificatesV1Api).readCertificateSigningRequest({ name: first.name });
    writeKubeletMount(policyDir, { 'policy.yaml': policyFor([spec.username ?? assert.fail('no username')]) });
    for (const { name, kind } of created) {
      const decision = await waitForDecision(admin, name, 120_000);
      assert.equal(decision.type, 'Denied', name);
      assert.match(
        decision.message,
        kind === 'extensions'
          ? /request\.size: more than the limit of 16 extensions/
          : /request\.size: request is \d+ bytes, more than the limit of 16384/,
        `${name}: ${kind}`,
      );
    }
    await eventually(
      async () => {
        assert.equal(await approver.metric('cache_csrs', 'kept="unread"'), 0);
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  });
});
