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
});
