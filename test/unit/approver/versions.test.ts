// The approver refuses to start where a policy needs the renewal proof the cluster's release cannot give.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, startVersionServer, type VersionServer } from '../../support/version-server.ts';

describe('the approver on an older cluster', () => {
  let standIn: VersionServer;
  let dir: string;
  before(async () => {
    standIn = await startVersionServer({ major: '1', minor: '31', gitVersion: 'v1.31.4' });
    dir = mkdtempSync(join(tmpdir(), 'kcr-approver-versions-'));
    standIn.writeKubeconfig(join(dir, 'kubeconfig'));
    writeFileSync(
      join(dir, 'policy.yaml'),
      `policies:
  - name: strict
    bootstrap: { groups: ['system:bootstrappers:kcr:cluster-a'] }
    identity: { commonNames: ['agent-*'] }
  - name: names
    bootstrap: { groups: ['system:bootstrappers:kcr:cluster-b'] }
    identity: { commonNames: ['other-*'] }
    renewal: trustUsername
`,
    );
  });
  after(() => {
    standIn.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 2 naming each policy that requires the credential-id (renewal: true, the default) before 1.32', async () => {
    const { status, stderr } = await runCli([
      'approver',
      '--policy',
      join(dir, 'policy.yaml'),
      '--kubeconfig',
      join(dir, 'kubeconfig'),
    ]);
    assert.equal(status, 2, stderr);
    assert.match(stderr, /^kubeconfig-rotator approver: the cluster's Kubernetes is too old for the policy\n/);
    assert.match(
      stderr,
      /^ {2}policies\[0\] \(strict\)\.renewal: authentication\.kubernetes\.io\/credential-id .* needs Kubernetes 1\.32 or later; the cluster runs v1\.31\.4: every renewal would be denied/m,
    );
    assert.doesNotMatch(stderr, /policies\[1\]/);
  });
});
