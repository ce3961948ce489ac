// `status --secret` against the real source cluster: a Secret in each format a sink writes (here Argo CD's,
// Istio's and the plain kubeconfig one, as the sidecar renders them), read through the format the Secret
// carries, with --context choosing a context of a kubeconfig whose current one points elsewhere.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { renderSecret, type SecretFormatSettings } from '../../src/core/secret-format/formats.ts';
import { REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { testCluster } from '../support/clusters.ts';
import { credentialBundle } from '../support/credential-bundle.ts';
import { uniqueName } from '../support/kube.ts';
import { opensslCa } from '../support/openssl-ca.ts';
import { scratchDir } from '../support/sidecar.ts';

const execute = promisify(execFile);
const source = testCluster('source');
const core = source.admin().makeApiClient(CoreV1Api);
const scratch = scratchDir('status');
const ca = opensslCa('status-ca');
const namespace = uniqueName('kcr-status');
const now = Date.now();
const bundle = credentialBundle(ca, { notBefore: now - 60_000, notAfter: now + 3_600_000 });
let kubeconfig = '';

async function status(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execute(process.execPath, [join(REPO_ROOT, 'src', 'cli.ts'), 'status', ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function publish(name: string, settings: SecretFormatSettings): Promise<void> {
  const content = renderSecret(bundle, settings);
  await core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name, labels: content.labels, annotations: content.annotations },
      type: content.type,
      stringData: { ...content.data },
    },
  });
}

before(async () => {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await publish('plain', { format: 'kubeconfig', targetName: 'east' });
  await publish('cluster-east', { format: 'argocd', targetName: 'east' });
  await publish('istio-remote-secret-east', { format: 'istio', targetName: 'east', clusterName: 'mesh-east' });
  // The admin kubeconfig with a second context, current, that points nowhere: --context must pick the right one.
  const admin = parse(readFileSync(source.state.kubeconfig, 'utf8')) as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
    contexts: { name: string; context: { cluster: string; user: string } }[];
    'current-context': string;
  };
  const real = admin.contexts.find((context) => context.name === admin['current-context']) ?? assert.fail();
  admin.clusters.push({ name: 'nowhere', cluster: { server: 'https://127.0.0.1:1' } });
  admin.contexts.push({ name: 'nowhere', context: { cluster: 'nowhere', user: real.context.user } });
  admin['current-context'] = 'nowhere';
  kubeconfig = join(scratch.path, 'two-contexts.kubeconfig');
  writeFileSync(kubeconfig, stringify(admin), { mode: 0o600 });
});

after(async () => {
  await core.deleteNamespace({ name: namespace });
  ca.dispose();
  scratch.dispose();
});

describe('status --secret', () => {
  const context = () => ['--kubeconfig', kubeconfig, '--context', testContext()];
  const testContext = () =>
    (parse(readFileSync(source.state.kubeconfig, 'utf8')) as { 'current-context': string })['current-context'];

  for (const [secret, format] of [
    ['plain', 'kubeconfig'],
    ['cluster-east', 'argocd'],
    ['istio-remote-secret-east', 'istio'],
  ] as const) {
    it(`reads the ${format} format's Secret as its sink wrote it, through --context, with no --key`, async () => {
      const result = await status('--secret', `${namespace}/${secret}`, ...context(), '--json');
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.equal(report.identity, 'CN=agent-a, O=agents');
      assert.equal(report.server, 'https://east.example:6443');
      assert.equal(report.keyMatches, true);
    });
  }

  it('a context the kubeconfig lacks is an error naming it; the current one (nowhere) is not reachable', async () => {
    const missing = await status('--secret', `${namespace}/plain`, '--kubeconfig', kubeconfig, '--context', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /has no context "nope"/);
    const unreachable = await status('--secret', `${namespace}/plain`, '--kubeconfig', kubeconfig);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, new RegExp(`secret ${namespace}/plain cannot be read`));
  });

  it('a --key the Secret lacks is an error naming the key and the format', async () => {
    const result = await status('--secret', `${namespace}/plain`, ...context(), '--key', 'other');
    assert.equal(result.code, 1);
    assert.match(result.stderr, /\(format kubeconfig, key "other"\) has no key "other"/);
  });
});
