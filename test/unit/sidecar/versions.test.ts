// The sidecar's start-time check of each target's Kubernetes release, against a stand-in apiserver's /version;
// and the sidecar itself, spawned, refusing to start on it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { targetSchema } from '../../../src/core/config/sidecar.ts';
import { resolveTarget } from '../../../src/sidecar/config.ts';
import { targetVersionProblems } from '../../../src/sidecar/versions.ts';
import { runCli, startVersionServer, type VersionServer } from '../../support/version-server.ts';

const certificateTarget = resolveTarget(
  targetSchema.parse({
    name: 'certs',
    bootstrapKubeconfig: '/bootstrap/certs',
    identity: { commonName: 'agent' },
    sinks: { directory: { path: '/out/certs' } },
  }),
  {},
);
const federated = {
  name: 'federated',
  credential: 'federated',
  audiences: ['kubeconfig-rotator:target'],
  targetUser: 'source-a:system:serviceaccount:ns:agent',
  serviceAccount: { namespace: 'ns', name: 'agent' },
};
const federatedTarget = resolveTarget(
  targetSchema.parse({
    ...federated,
    bootstrapKubeconfig: '/bootstrap/federated',
    sinks: { directory: { path: '/out/federated' } },
  }),
  {},
);

describe('targetVersionProblems', () => {
  let standIn: VersionServer;
  before(async () => {
    standIn = await startVersionServer({ major: '1', minor: '29', gitVersion: 'v1.29.9' });
  });
  after(() => {
    standIn.close();
  });

  /** Runs the sidecar on one target (bootstrap kubeconfig: the stand-in's; a directory sink) to its exit. */
  const startSidecarWith = async (target: Record<string, unknown>) => {
    const dir = mkdtempSync(join(tmpdir(), 'kcr-versions-'));
    try {
      const kubeconfig = join(dir, 'bootstrap.kubeconfig');
      standIn.writeKubeconfig(kubeconfig);
      const config = join(dir, 'config.yaml');
      const targets = [
        { ...target, bootstrapKubeconfig: kubeconfig, sinks: { directory: { path: join(dir, 'out') } } },
      ];
      writeFileSync(config, JSON.stringify({ stateDir: join(dir, 'state'), targets }));
      return await runCli(['sidecar', '--config', config]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const bootstraps = () =>
    new Map([
      ['certs', standIn],
      ['federated', standIn],
    ]);

  it('names a federated target whose cluster predates structured authentication, by index and name', async () => {
    assert.deepEqual(await targetVersionProblems([certificateTarget, federatedTarget], bootstraps()), [
      '  targets[1] (federated): structured authentication configuration (the jwt authenticator that accepts federated tokens) needs Kubernetes 1.30 or later; the cluster runs v1.29.9\n',
    ]);
  });

  it('passes every target on a cluster new enough', async () => {
    standIn.version = { major: '1', minor: '30+', gitVersion: 'v1.30.1-eks-1' };
    assert.deepEqual(await targetVersionProblems([certificateTarget, federatedTarget], bootstraps()), []);
  });

  it('passes a target whose version is unknown: no bootstrap kubeconfig yet, an unreachable or odd apiserver', async () => {
    standIn.version = { major: '1', minor: '20' };
    assert.equal((await targetVersionProblems([certificateTarget], bootstraps())).length, 1, 'the control');
    assert.deepEqual(await targetVersionProblems([certificateTarget], new Map()), []);
    const closed = { server: 'https://127.0.0.1:1', caPem: standIn.caPem };
    assert.deepEqual(await targetVersionProblems([certificateTarget], new Map([['certs', closed]])), []);
    standIn.version = 'not a version';
    assert.deepEqual(await targetVersionProblems([certificateTarget], bootstraps()), []);
  });

  // Issue 22: the bootstrap kubeconfig's tls-server-name is how a target behind another address is verified.
  it("checks the target's certificate against the bootstrap kubeconfig's tls-server-name", async () => {
    const named = await startVersionServer({ major: '1', minor: '20' }, { dnsName: 'api.test' });
    try {
      const bootstrap = { server: named.server, caPem: named.caPem, config: { tlsServerName: 'api.test' } };
      assert.equal((await targetVersionProblems([certificateTarget], new Map([['certs', bootstrap]]))).length, 1);
    } finally {
      named.close();
    }
  });

  it('names a certificate target with federated bootstrap on a cluster before 1.30, with the fallback; token bootstrap passes', async () => {
    standIn.version = { major: '1', minor: '29', gitVersion: 'v1.29.9' };
    const withBootstrap = (bootstrap: Record<string, unknown>) =>
      resolveTarget(
        targetSchema.parse({
          name: 'certs',
          bootstrapKubeconfig: '/bootstrap/certs',
          identity: { commonName: 'agent' },
          bootstrap,
          sinks: { directory: { path: '/out/certs' } },
        }),
        // Federated bootstrap: the pod's own ServiceAccount.
        { namespace: 'agents', serviceAccount: 'agent' },
      );
    assert.deepEqual(
      await targetVersionProblems([withBootstrap({ with: 'federated', audiences: ['kcr:east'] })], bootstraps()),
      [
        "  targets[0] (certs): federated bootstrap (bootstrap.with: federated: the target's jwt authenticator of structured authentication configuration accepts the source's ServiceAccount tokens; on an older target use bootstrap.with: token) needs Kubernetes 1.30 or later; the cluster runs v1.29.9\n",
      ],
    );
    assert.deepEqual(await targetVersionProblems([withBootstrap({ with: 'token' })], bootstraps()), []);
    // Spawned: its bootstrap kubeconfig holds no credential (none needed with federated bootstrap), and the
    // version, not the file, is what it refuses.
    const { status, stderr } = await startSidecarWith({
      name: 'certs',
      identity: { commonName: 'agent' },
      bootstrap: { with: 'federated', audiences: ['kcr:east'], serviceAccount: { namespace: 'ns', name: 'agent' } },
    });
    assert.equal(status, 2, stderr);
    assert.match(
      stderr,
      /^kubeconfig-rotator sidecar: a target's Kubernetes is too old for its configuration\n {2}targets\[0\] \(certs\): federated bootstrap .* use bootstrap\.with: token\) needs Kubernetes 1\.30 or later; the cluster runs v1\.29\.9$/m,
    );
  });

  it('keeps the sidecar from starting, exit 2, naming the target and the feature', async () => {
    standIn.version = { major: '1', minor: '29', gitVersion: 'v1.29.9' };
    const { status, stderr } = await startSidecarWith(federated);
    assert.equal(status, 2, stderr);
    assert.match(
      stderr,
      /^kubeconfig-rotator sidecar: a target's Kubernetes is too old for its configuration\n {2}targets\[0\] \(federated\): structured authentication .* needs Kubernetes 1\.30 or later; the cluster runs v1\.29\.9$/m,
    );
  });
});
