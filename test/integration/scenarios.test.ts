// Whole-product scenarios on the two test clusters with the real approver (its own RBAC, not admin):
// Admiralty-style consumption across rotations, and three source clusters against one target, where each
// gets only its own identity and one source's bootstrap token cannot obtain another's.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { readCertificate } from '../../src/core/pki/certificate.ts';
import { ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { approverAccount, ApproverProcess, type ApproverAccount } from '../support/approver-process.ts';
import { testCluster } from '../support/clusters.ts';
import { uniqueName } from '../support/kube.ts';
import {
  outputDir,
  prepareTarget,
  rotated,
  sidecarTestFile,
  writeSidecarConfig,
  type PreparedTarget,
} from '../support/sidecar.ts';

const execute = promisify(execFile);
const target = testCluster('target');
const source = testCluster('source');
const { scratch, secrets, startSidecar, track } = sidecarTestFile('scenarios');
let account: ApproverAccount;
let approver: ApproverProcess;
let sources: PreparedTarget[] = [];
let kubectl = '';

before(async () => {
  kubectl = join(await ensureControlPlane(), 'kubectl');
  sources = await Promise.all([1, 2, 3].map(() => prepareTarget(target)));
  for (const prepared of sources) secrets.push(prepared.bootstrap.token.secret);
  account = await approverAccount(target, 'kubernetes.io/kube-apiserver-client', scratch.path);
  secrets.push(account.token);
  const policy = join(scratch.path, 'policy.yaml');
  // One policy per source cluster: its bootstrap group may obtain its own identity, and renew it.
  writeFileSync(
    policy,
    stringify({
      policies: sources.map((prepared) => ({
        name: prepared.name,
        bootstrap: { groups: [prepared.bootstrap.group] },
        identity: { commonNames: [prepared.identity.commonName], organizations: prepared.identity.organizations },
        maxExpirationSeconds: 3600,
      })),
    }),
  );
  approver = track(new ApproverProcess({ account, policy, logDir: scratch.path }));
  await approver.waitForLog((line) => line.msg === 'approver started');
});

// After sidecarTestFile's end (hooks run in the order they are registered): the approver is stopped and its
// log checked there.
after(async () => {
  await account.delete();
});

async function whoAmI(kubeconfig: string): Promise<string> {
  const { stdout } = await execute(kubectl, [
    '--kubeconfig',
    kubeconfig,
    'auth',
    'whoami',
    '-o',
    'jsonpath={.status.userInfo.username}',
  ]);
  return stdout;
}

describe('three source clusters against one target', () => {
  it('each gets its own identity, renews it with its certificate, and an Admiralty-style consumer never notices a rotation', async () => {
    const [first, ...others] = sources;
    assert.ok(first !== undefined);
    const secretName = `${first.name}-kubeconfig`;
    const running = [
      {
        prepared: first,
        sidecar: startSidecar(
          writeSidecarConfig(first, {
            forceIntervalSeconds: 3,
            secret: { namespace: 'default', name: secretName },
            sourceKubeconfig: source.state.kubeconfig,
          }),
        ),
      },
      ...others.map((prepared) => ({
        prepared,
        sidecar: startSidecar(writeSidecarConfig(prepared, { forceIntervalSeconds: 3 })),
      })),
    ];
    for (const { prepared, sidecar } of running) {
      await sidecar.waitForLog((line) => rotated(line) && line.authenticatedWith === 'current', 60_000);
      const facts = readCertificate(readFileSync(join(outputDir(prepared), 'tls.crt'), 'utf8'));
      assert.deepEqual(facts.subject, prepared.identity, `${prepared.name} holds exactly its own identity`);
      assert.equal(await whoAmI(join(outputDir(prepared), 'kubeconfig')), prepared.identity.commonName);
    }

    // Admiralty reads the Secret's "config" key into a Go client (kubectl here); a long-lived client-node
    // client keeps the directory's file-reference kubeconfig. Neither may fail across three rotations.
    const longLived = new KubeConfig();
    longLived.loadFromFile(join(outputDir(first), 'kubeconfig'));
    const api = longLived.makeApiClient(AuthenticationV1Api);
    const sidecar = running[0]?.sidecar ?? assert.fail();
    const until = sidecar.count(rotated) + 3;
    const failures: string[] = [];
    let secretReads = 0;
    let clientCalls = 0;
    const fromSecret = join(scratch.path, 'admiralty.kubeconfig');
    while (sidecar.count(rotated) < until) {
      try {
        const secret = await source
          .admin()
          .makeApiClient(CoreV1Api)
          .readNamespacedSecret({ namespace: 'default', name: secretName });
        writeFileSync(fromSecret, Buffer.from(secret.data?.config ?? '', 'base64'), { mode: 0o600 });
        if ((await whoAmI(fromSecret)) !== first.identity.commonName)
          failures.push("the Secret's kubeconfig is another identity");
        secretReads++;
        const review = await api.createSelfSubjectReview({ body: {} });
        if (review.status?.userInfo?.username !== first.identity.commonName)
          failures.push('client-node saw another identity');
        clientCalls++;
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(
      secretReads >= 3 && clientCalls >= 3,
      `${String(secretReads)} Secret reads, ${String(clientCalls)} client calls`,
    );
    for (const { prepared } of running) secrets.push(readFileSync(join(outputDir(prepared), 'tls.key'), 'utf8'));
  });

  it("one source's bootstrap token cannot obtain another source's identity", async () => {
    const [compromised, victim] = sources;
    assert.ok(compromised !== undefined && victim !== undefined);
    // A sidecar holding only the compromised source's bootstrap token, asking for the victim's identity.
    const impostor: PreparedTarget = {
      ...compromised,
      name: uniqueName('impostor'),
      identity: victim.identity,
      dir: join(scratch.path, 'impostor'),
    };
    mkdirSync(impostor.dir);
    const sidecar = startSidecar(writeSidecarConfig(impostor));
    const denied = await sidecar.waitForLog(
      (line) => line.msg === 'rotation failed; the current certificate stays' && line.result === 'denied',
      30_000,
    );
    assert.match(
      String(denied.error),
      new RegExp(
        `was denied: .*${compromised.name}.*"${victim.identity.commonName}" is not an identity this policy allows`,
      ),
    );
    assert.equal(sidecar.count(rotated), 0, 'no certificate was obtained');
    await sidecar.stop();
  });
});
