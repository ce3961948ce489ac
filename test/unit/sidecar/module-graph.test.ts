// The sidecar loads neither @kubernetes/client-node nor undici (issue 16: importing client-node alone costs
// about 60 MiB of RSS): its real module graph, recorded in a sidecar spawned as the image runs it, with a
// Secret sink, the restart action and events configured, until its first rotation attempt has failed.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CliProcess } from '../../../scripts/testbed/cli-process.ts';
import { opensslCa } from '../../support/openssl-ca.ts';

const ca = opensslCa('module-graph-ca');
const dir = mkdtempSync(join(tmpdir(), 'kcr-module-graph-'));
after(() => {
  ca.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("the sidecar's module graph", () => {
  it(
    'holds no @kubernetes/client-node and no undici, with every sidecar feature configured',
    { timeout: 60_000 },
    async () => {
      // Nothing listens on port 1: every call fails at once, after its modules are loaded.
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          'current-context': 't',
          contexts: [{ name: 't', context: { cluster: 't', user: 'u' } }],
          clusters: [
            {
              name: 't',
              cluster: {
                server: 'https://127.0.0.1:1',
                'certificate-authority-data': Buffer.from(ca.certPem).toString('base64'),
              },
            },
          ],
          users: [{ name: 'u', user: { token: 'abcdef.0123456789abcdef' } }],
        }),
      );
      const config = join(dir, 'config.yaml');
      writeFileSync(
        config,
        `sourceKubeconfig: ${kubeconfig}
targets:
  - name: a
    bootstrapKubeconfig: ${kubeconfig}
    identity: { commonName: agent-a }
    sinks: { directory: { path: ${join(dir, 'out')} }, secret: { namespace: ns, name: s } }
    restart: [{ kind: Deployment, namespace: ns, name: d }]
`,
      );
      const loaded = join(dir, 'loaded');
      const sidecar = new CliProcess(['sidecar', '--once', '--config', config], {
        nodeOptions: [
          '--optimize-for-size',
          '--import',
          fileURLToPath(new URL('../../support/loaded-packages.ts', import.meta.url)),
        ],
        env: { KCR_LOADED_PACKAGES: loaded, POD_NAME: 'p', POD_NAMESPACE: 'ns' },
      });
      await sidecar.waitForLog((line) => line.msg === 'rotation failed; the current certificate stays');
      sidecar.child.kill('SIGTERM');
      await sidecar.exited;
      const packages = readFileSync(loaded, 'utf8').split('\n');
      assert.ok(packages.includes('pino') && packages.includes('yaml'), `the record works: ${packages.join(', ')}`);
      assert.ok(!packages.includes('@kubernetes/client-node'), packages.join(', '));
      assert.ok(!packages.includes('undici'), packages.join(', '));
    },
  );
});
