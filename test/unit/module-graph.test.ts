// The in-cluster programs (sidecar, approver, injector) load neither @kubernetes/client-node nor undici (issue 16:
// importing client-node alone costs about 60 MiB of RSS; issue 25 moved the injector too): their real module
// graphs, recorded in processes spawned as the image runs them, the sidecar with a Secret sink, the restart action
// and events configured, the injector with self-managed TLS (its CA Secret and caBundle), until the first API
// call of each has failed.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CliProcess } from '../../scripts/testbed/cli-process.ts';
import { opensslCa } from '../support/openssl-ca.ts';

const ca = opensslCa('module-graph-ca');
const dir = mkdtempSync(join(tmpdir(), 'kcr-module-graph-'));
after(() => {
  ca.dispose();
  rmSync(dir, { recursive: true, force: true });
});

// Nothing listens on port 1: every call fails at once, after its modules are loaded.
function unreachableKubeconfig(): string {
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
  return kubeconfig;
}

/**
 * The packages a CLI command has loaded by the time it logs `failedLine`, or, without one, by the time it exits
 * (then `exited` checks how).
 */
async function packagesLoaded(
  args: readonly string[],
  failedLine: string | ((child: CliProcess) => Promise<void>),
): Promise<string[]> {
  const loaded = join(dir, `loaded-${args[0] ?? ''}`);
  const child = new CliProcess([...args], {
    nodeOptions: [
      '--optimize-for-size',
      '--import',
      fileURLToPath(new URL('../support/loaded-packages.ts', import.meta.url)),
    ],
    env: { KCR_LOADED_PACKAGES: loaded, POD_NAME: 'p', POD_NAMESPACE: 'ns' },
  });
  if (typeof failedLine === 'string') {
    await child.waitForLog((line) => line.msg === failedLine);
    child.child.kill('SIGTERM');
    await child.exited;
  } else await failedLine(child);
  const packages = readFileSync(loaded, 'utf8').split('\n');
  assert.ok(packages.includes('pino') && packages.includes('yaml'), `the record works: ${packages.join(', ')}`);
  return packages;
}

/** The packages `kubeconfig-rotator credential ARGS` loaded: it exits by itself (the record is written at exit). */
async function pluginPackages(
  args: readonly string[],
): Promise<{ packages: string[]; stderr: string; code: number | null }> {
  const loaded = join(dir, `loaded-credential-${String(args.length)}`);
  const child = new CliProcess(['credential', ...args], {
    nodeOptions: ['--import', fileURLToPath(new URL('../support/loaded-packages.ts', import.meta.url))],
    env: { KCR_LOADED_PACKAGES: loaded },
  });
  const { code } = await child.exited;
  // The file exists only if the recording hook ran to the process's exit.
  const packages = readFileSync(loaded, 'utf8')
    .split('\n')
    .filter((name) => name !== '');
  return { packages, stderr: child.stderr, code };
}

describe('the module graph', () => {
  it(
    'of the sidecar holds no @kubernetes/client-node and no undici, with every sidecar feature configured',
    { timeout: 60_000 },
    async () => {
      const kubeconfig = unreachableKubeconfig();
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
      const packages = await packagesLoaded(
        ['sidecar', '--once', '--config', config],
        'rotation failed; the current certificate stays',
      );
      assert.ok(!packages.includes('@kubernetes/client-node'), packages.join(', '));
      assert.ok(!packages.includes('undici'), packages.join(', '));
    },
  );

  it('of the approver holds no @kubernetes/client-node and no undici', { timeout: 60_000 }, async () => {
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      `policies:
  - name: agents
    bootstrap: { groups: ['system:bootstrappers:kcr'] }
    identity: { commonNames: ['agent-*'] }
    subjectAccessReview: true
`,
    );
    const packages = await packagesLoaded(
      ['approver', '--policy', policy, '--kubeconfig', unreachableKubeconfig(), '--listen', '127.0.0.1:0'],
      'informer failed; relisting after a backoff',
    );
    assert.ok(!packages.includes('@kubernetes/client-node'), packages.join(', '));
    assert.ok(!packages.includes('undici'), packages.join(', '));
  });

  it(
    'of the injector holds no @kubernetes/client-node and no undici, with self-managed TLS',
    { timeout: 60_000 },
    async () => {
      const config = join(dir, 'injector.yaml');
      writeFileSync(
        config,
        `listen: { host: 127.0.0.1, port: 0 }
probes: { host: 127.0.0.1, port: 0 }
tls:
  mode: self-managed
  secret: { namespace: ns, name: injector-ca }
  webhookConfiguration: kcr-injector
  ipAddresses: [127.0.0.1]
sidecar: { image: 'kubeconfig-rotator:test' }
targets: []
`,
      );
      const packages = await packagesLoaded(
        ['injector', '--config', config, '--kubeconfig', unreachableKubeconfig()],
        async (child) => {
          // Its first call (reading the CA Secret) fails: the injector cannot start and exits 1 (a configuration
          // it could not read or a kubeconfig it could not load would be 2).
          assert.deepEqual(await child.exited, { code: 1, signal: null }, child.stderr);
        },
      );
      assert.ok(!packages.includes('@kubernetes/client-node'), packages.join(', '));
      assert.ok(!packages.includes('undici'), packages.join(', '));
    },
  );

  // Run by client-go on every credential refresh of every consumer: its start is its cost (bench/credential-plugin.ts).
  it(
    'of the credential plugin holds no package for a directory, and only yaml for a Secret',
    { timeout: 60_000 },
    async () => {
      const out = join(dir, 'plugin-out');
      const directory = await pluginPackages(['--directory', out]);
      assert.equal(directory.code, 1, directory.stderr);
      assert.match(directory.stderr, /no credential published yet/);
      assert.deepEqual(directory.packages, []);
      // A Secret through our own client (rest.ts), whose first call fails at once: no logger, metrics, zod or client-node.
      const secret = await pluginPackages([
        '--secret-namespace',
        'ns',
        '--secret-name',
        's',
        '--kubeconfig',
        unreachableKubeconfig(),
      ]);
      assert.equal(secret.code, 1, secret.stderr);
      assert.match(secret.stderr, /Secret ns\/s not readable/);
      assert.deepEqual(secret.packages, ['yaml']);
    },
  );
});
