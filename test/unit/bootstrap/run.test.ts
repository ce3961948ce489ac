// `bootstrap` checks everything it can before touching a cluster, and lists every problem at once (exit 2);
// --dry-run prints the plan without contacting either cluster.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runBootstrap, type BootstrapOptions } from '../../../src/bootstrap/run.ts';
import { createCertificateAuthority } from '../../../src/core/pki/issue.ts';

const dir = mkdtempSync(join(tmpdir(), 'kcr-bootstrap-run-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const caFile = join(dir, 'ca.crt');
writeFileSync(
  caFile,
  createCertificateAuthority('test-ca', {
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
  }).cert,
);

/** A kubeconfig file with one context per cluster (the first one current), each authenticated with a token. */
function kubeconfig(name: string, ...clusters: Record<string, unknown>[]): string {
  const path = join(dir, `${name}.kubeconfig`);
  const names = clusters.map((_, index) => `${name}-${String(index)}`);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: clusters.map((cluster, index) => ({
        name: names[index],
        cluster: { server: `https://127.0.0.1:${String(index + 1)}`, ...cluster },
      })),
      users: [{ name, user: { token: 'not-used' } }],
      contexts: names.map((context) => ({ name: context, context: { cluster: context, user: name } })),
      'current-context': names[0],
    }),
  );
  return path;
}

async function bootstrap(options: Partial<BootstrapOptions>): Promise<{ code: number; out: string; err: string }> {
  const text = { out: '', err: '' };
  const into = (key: 'out' | 'err') =>
    new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        text[key] += chunk.toString();
        done();
      },
    });
  const code = await runBootstrap({
    targetKubeconfig: kubeconfig('target', { 'certificate-authority': caFile }),
    targetContext: undefined,
    sourceKubeconfig: kubeconfig('source', { 'certificate-authority': caFile }),
    sourceContext: undefined,
    source: 'west',
    target: 'east',
    ttl: '1h',
    namespace: 'kubeconfig-rotator',
    secretName: undefined,
    server: undefined,
    dryRun: true,
    out: into('out'),
    err: into('err'),
    ...options,
  });
  return { code, ...text };
}

describe('bootstrap before it contacts a cluster', () => {
  it('--dry-run prints the plan for a target kubeconfig with a CA file', async () => {
    const { code, out, err } = await bootstrap({});
    assert.equal(code, 0, err);
    assert.match(out, /^# target cluster \(https:\/\/127\.0\.0\.1:1\)/m);
  });

  it("--dry-run shows the server the bootstrap kubeconfig names (--server, else the target kubeconfig's): a URL is no secret", async () => {
    const given = await bootstrap({ server: 'https://east.example:6443' });
    assert.equal(given.code, 0, given.err);
    assert.match(
      given.out,
      /^# the bootstrap kubeconfig \(key kubeconfig\) sends the sidecar to server https:\/\/east\.example:6443 /m,
    );
    const token = await bootstrap({ server: 'https://east.example:6443', credential: 'token' });
    assert.equal(token.code, 0, token.err);
    assert.match(token.out, /sends the sidecar to server https:\/\/east\.example:6443 /);
    const fromKubeconfig = await bootstrap({});
    assert.match(fromKubeconfig.out, /sends the sidecar to server https:\/\/127\.0\.0\.1:1 /);
  });

  // Issue 22: a target reached at an address its certificate does not name needs the name in every client.
  it("carries the target context's tls-server-name into the bootstrap kubeconfig, certificates and tokens alike", async () => {
    const targetKubeconfig = kubeconfig('named', { 'certificate-authority': caFile, 'tls-server-name': 'api.east' });
    for (const credential of ['certificate', 'token']) {
      const { code, out, err } = await bootstrap({ targetKubeconfig, credential });
      assert.equal(code, 0, err);
      assert.match(
        out,
        /sends the sidecar to server https:\/\/127\.0\.0\.1:1 with the target CA, checking its certificate for api\.east /,
      );
    }
  });

  it('--target-context picks a context other than the current one', async () => {
    const { code, out, err } = await bootstrap({
      targetKubeconfig: kubeconfig('two', { 'certificate-authority': caFile }, { 'certificate-authority': caFile }),
      targetContext: 'two-1',
    });
    assert.equal(code, 0, err);
    assert.match(out, /^# target cluster \(https:\/\/127\.0\.0\.1:2\)/m);
  });

  it('a kubeconfig that does not exist or lacks the context is a listed problem naming the flag', async () => {
    const path = kubeconfig('one', { 'certificate-authority': caFile });
    const { code, out, err } = await bootstrap({
      targetKubeconfig: '/nonexistent',
      sourceKubeconfig: path,
      sourceContext: 'elsewhere',
    });
    assert.equal(code, 2);
    assert.equal(out, '');
    assert.equal(
      err,
      'kubeconfig-rotator bootstrap: 2 problems\n' +
        '  --target-kubeconfig /nonexistent: cannot be loaded: kubeconfig /nonexistent does not exist\n' +
        `  --source-kubeconfig ${path}: cannot be loaded: kubeconfig ${path} has no context "elsewhere"\n`,
    );
  });

  it('names longer than a DNS label may be (63 characters) are listed problems: they are label values', async () => {
    const long = 'a'.repeat(64);
    const { code, err } = await bootstrap({ source: long, target: long, namespace: long });
    assert.equal(code, 2);
    assert.equal(
      err,
      'kubeconfig-rotator bootstrap: 3 problems\n' +
        ['--source-name', '--target-name', '--namespace']
          .map((flag) => `  ${flag} "${long}" must be a DNS label (a-z, 0-9, -; at most 63 characters)\n`)
          .join(''),
    );
    assert.equal((await bootstrap({ source: long.slice(1), target: long.slice(1), namespace: long.slice(1) })).code, 0);
  });

  it('a target CA file that cannot be read is one of the listed problems (exit 2), not a crash', async () => {
    const missing = join(dir, 'missing-ca.crt');
    const { code, out, err } = await bootstrap({
      targetKubeconfig: kubeconfig('missing-ca', { 'certificate-authority': missing }),
      source: 'West',
    });
    assert.equal(code, 2);
    assert.equal(out, '');
    assert.match(err, /^kubeconfig-rotator bootstrap: 2 problems\n/);
    assert.match(err, /--source-name "West" must be a DNS label/);
    assert.ok(err.includes(`the target kubeconfig's CA file ${missing} cannot be read: ENOENT`), err);
  });

  it('a target kubeconfig without a CA is one of the listed problems (exit 2), with --dry-run too', async () => {
    const { code, out, err } = await bootstrap({
      targetKubeconfig: kubeconfig('no-ca', { 'insecure-skip-tls-verify': true }),
    });
    assert.equal(code, 2);
    assert.equal(out, '');
    assert.match(
      err,
      /^kubeconfig-rotator bootstrap: 1 problem\n {2}the target kubeconfig has no CA for https:\/\/127\.0\.0\.1:1; the bootstrap kubeconfig must verify the server\n$/,
    );
  });
});

describe('bootstrap --credential token before it contacts a cluster', () => {
  it('--dry-run prints the ServiceAccount, its lease, its Role and the guardrail, and no token', async () => {
    const { code, out, err } = await bootstrap({ credential: 'token', maxTokenTtl: '2h', audiences: ['vault'] });
    assert.equal(code, 0, err);
    const kinds = [...out.matchAll(/^kind: (\w+)$/gm)].map((match) => match[1]);
    assert.deepEqual(kinds, [
      'Namespace',
      'ServiceAccount',
      'Secret',
      'Role',
      'RoleBinding',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
      'Namespace',
      'Secret',
    ]);
    assert.match(out, /object\.spec\.expirationSeconds <= 7200/);
    assert.match(out, /audience in \["vault"\]/);
  });

  it('lists every problem with the token flags at once; token flags are refused for certificates', async () => {
    const token = await bootstrap({ credential: 'token', ttl: '5m', maxTokenTtl: '90s', audiences: ['', 'a\nb'] });
    assert.equal(token.code, 2);
    assert.equal(
      token.err,
      'kubeconfig-rotator bootstrap: 4 problems\n' +
        '  --ttl 5m must be between 10m and 7d\n' +
        '  --max-token-ttl 90s must be whole seconds, at least 10m\n' +
        '  --audience "" must be non-empty, without control characters\n' +
        '  --audience "a\\nb" must be non-empty, without control characters\n',
    );
    const longer = await bootstrap({ credential: 'token', ttl: '2h', maxTokenTtl: '1h' });
    assert.match(longer.err, /--ttl 2h is longer than --max-token-ttl 1h/);
    const certificate = await bootstrap({ maxTokenTtl: '1h', audiences: ['vault'] });
    assert.equal(
      certificate.err,
      'kubeconfig-rotator bootstrap: 2 problems\n' +
        '  --max-token-ttl is for --credential token only\n' +
        '  --audience is for --credential token or federated, or --bootstrap-with federated, only\n',
    );
  });
});

describe('bootstrap --credential certificate --bootstrap-with federated before it contacts a cluster', () => {
  it('needs the source ServiceAccount, refuses a bootstrap other than token or federated, --cluster-role, and --bootstrap-with for other credentials, all at once', async () => {
    const noAccount = await bootstrap({
      bootstrapWith: 'federated',
      federated: { serviceAccounts: [], clusterRoles: ['view'] },
    });
    assert.equal(noAccount.code, 2);
    assert.equal(
      noAccount.err,
      'kubeconfig-rotator bootstrap: 2 problems\n' +
        "  --cluster-role is for --credential federated: with --bootstrap-with federated the certificate's identity is what is granted, not the bootstrap user\n" +
        '  --service-account NAMESPACE/NAME (the source ServiceAccount the target admits) is required\n',
    );
    const unknown = await bootstrap({ bootstrapWith: 'oidc' });
    assert.match(unknown.err, /--bootstrap-with oidc must be token or federated/);
    const token = await bootstrap({ credential: 'token', bootstrapWith: 'federated' });
    assert.match(token.err, /--bootstrap-with is for --credential certificate only/);
    // The audience the target's authenticator expects is a federated bootstrap's own flag.
    const accepted = await bootstrap({
      bootstrapWith: 'federated',
      audiences: ['kcr:east'],
      federated: { serviceAccounts: ['agents/admiralty'] },
    });
    assert.doesNotMatch(accepted.err, /--audience|--service-account|--bootstrap-with/);
  });
});

// Issue 22: an empty prefix maps a source's tokens to the target's own names, a system: one into reserved ones.
describe('bootstrap --credential federated: the user prefix', () => {
  const federated = (userPrefix: string) =>
    bootstrap({ credential: 'federated', federated: { serviceAccounts: ['agents/admiralty'], userPrefix } });

  it('refuses an empty --user-prefix and one starting with system:, naming the flag', async () => {
    for (const [prefix, reason] of [
      ['', /--user-prefix "" must not be empty/],
      ['system:', /--user-prefix "system:" must not start with system:/],
      ['system:masters-', /--user-prefix "system:masters-" must not start with system:/],
    ] as const) {
      const { code, err } = await federated(prefix);
      assert.equal(code, 2, prefix);
      assert.match(err, reason);
    }
  });
});
