// Loading the sidecar's config: what it points at is read once, and handed on parsed.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/core/config/validate.ts';
import { loadSidecarConfig } from '../../../src/sidecar/config.ts';
import { opensslCa } from '../../support/openssl-ca.ts';

const ca = opensslCa('config-ca');
const dir = mkdtempSync(join(tmpdir(), 'kcr-config-'));
after(() => {
  ca.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const bootstrapKubeconfig = (server: string) => `apiVersion: v1
kind: Config
clusters:
  - name: east
    cluster: { server: ${server}, certificate-authority-data: ${Buffer.from(ca.certPem).toString('base64')} }
users:
  - name: bootstrap
    user: { token: abcdef.0123456789abcdef }
contexts:
  - name: east
    context: { cluster: east, user: bootstrap }
current-context: east
`;

function writeConfig(name: string, targets: { name: string; bootstrap: string }[]): string {
  const path = join(dir, `${name}.yaml`);
  const lines = targets.map(
    (target) =>
      `  - { name: ${target.name}, bootstrapKubeconfig: ${target.bootstrap}, identity: { commonName: agent-a }, sinks: { directory: { path: ${join(dir, 'out', target.name)} } } }`,
  );
  writeFileSync(path, `targets:\n${lines.join('\n')}\n`);
  return path;
}

describe('loading the sidecar config', () => {
  it('returns each bootstrap kubeconfig parsed, and undefined for one that does not exist yet', () => {
    writeFileSync(join(dir, 'east.kubeconfig'), bootstrapKubeconfig('https://east.example:6443'));
    const path = writeConfig('two', [
      { name: 'east', bootstrap: join(dir, 'east.kubeconfig') },
      { name: 'west', bootstrap: join(dir, 'missing.kubeconfig') },
    ]);
    const { bootstraps } = loadSidecarConfig(path, {});
    assert.deepEqual([...bootstraps.keys()], ['east', 'west']);
    const east = bootstraps.get('east') ?? assert.fail('east was not read');
    assert.equal(east.server, 'https://east.example:6443');
    assert.equal(east.caPem, ca.certPem);
    assert.deepEqual(east.config.user.token, { value: 'abcdef.0123456789abcdef' });
    assert.equal(bootstraps.get('west'), undefined);
  });

  it('refuses a config whose bootstrap kubeconfig is unusable, naming the field', () => {
    writeFileSync(join(dir, 'plain.kubeconfig'), bootstrapKubeconfig('http://east.example:6443'));
    const path = writeConfig('plain', [{ name: 'east', bootstrap: join(dir, 'plain.kubeconfig') }]);
    assert.throws(
      () => loadSidecarConfig(path, {}),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(
          error.problems.map((problem) => problem.path),
          ['targets[0].bootstrapKubeconfig'],
        );
        assert.match(error.problems[0]?.message ?? '', /server: must be an https URL/);
        return true;
      },
    );
  });

  it("resolves a federated target's and a federated bootstrap's ServiceAccount once: the configured one, else the pod's own, else a problem naming the field", () => {
    const path = join(dir, 'federated.yaml');
    writeFileSync(
      path,
      `targets:
  - { name: fed, credential: federated, audiences: [kcr], bootstrapKubeconfig: ${join(dir, 'none')}, sinks: { directory: { path: ${join(dir, 'out', 'fed')} } } }
  - { name: named, credential: federated, audiences: [kcr], serviceAccount: { namespace: agents, name: admiralty }, bootstrapKubeconfig: ${join(dir, 'none')}, sinks: { directory: { path: ${join(dir, 'out', 'named')} } } }
  - { name: certs, identity: { commonName: a }, bootstrap: { with: federated, audiences: [kcr] }, bootstrapKubeconfig: ${join(dir, 'none')}, sinks: { directory: { path: ${join(dir, 'out', 'certs')} } } }
`,
    );
    const pod = { namespace: 'kcr', serviceAccount: 'sidecar', name: 'sidecar-0', uid: 'u-1' };
    const [fed, named, certs] = loadSidecarConfig(path, pod).config.targets;
    const own = {
      serviceAccount: { namespace: 'kcr', name: 'sidecar' },
      boundTo: { kind: 'Pod', name: 'sidecar-0', uid: 'u-1' },
    };
    assert.ok(
      fed?.credential === 'federated' && named?.credential === 'federated' && certs?.credential === 'certificate',
    );
    assert.deepEqual({ serviceAccount: fed.serviceAccount, boundTo: fed.boundTo }, own);
    assert.deepEqual(named.serviceAccount, { namespace: 'agents', name: 'admiralty' });
    assert.ok(certs.bootstrap?.with === 'federated');
    assert.deepEqual({ serviceAccount: certs.bootstrap.serviceAccount, boundTo: certs.bootstrap.boundTo }, own);
    // Outside a pod: every target that needs the pod's own ServiceAccount is named, the configured one is not.
    assert.throws(
      () => loadSidecarConfig(path, {}),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(
          error.problems.map((problem) => `${problem.path}: ${problem.message}`),
          [
            "targets[0].serviceAccount: is required for a federated target when POD_NAMESPACE and POD_SERVICE_ACCOUNT are not set (the pod's own)",
            "targets[2].bootstrap.serviceAccount: is required for federated bootstrap when POD_NAMESPACE and POD_SERVICE_ACCOUNT are not set (the pod's own)",
          ],
        );
        return true;
      },
    );
  });
});
