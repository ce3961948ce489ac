// The sidecar's reading of a kubeconfig: what its own client honours, and every other field refused by name.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import {
  ClientConfigError,
  execCredentialStale,
  execInfo,
  inClusterConfig,
  parseClientConfig,
  parseExecCredential,
  tokenFileStale,
  TOKEN_FILE_REREAD_MS,
} from '../../../../src/core/kubeconfig/client-config.ts';

const kubeconfig = (cluster: Record<string, unknown>, user: Record<string, unknown> = {}) =>
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'main',
    contexts: [{ name: 'main', context: { cluster: 'c', user: 'u' } }],
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', ...cluster } }],
    users: [{ name: 'u', user }],
  });

const refusal = (pattern: RegExp) => (error: unknown) =>
  error instanceof ClientConfigError && pattern.test(error.message);

describe('parseClientConfig', () => {
  it('reads files relative to the kubeconfig, inline data decoded', () => {
    const config = parseClientConfig(
      kubeconfig(
        { 'certificate-authority-data': Buffer.from('CA').toString('base64'), 'tls-server-name': 'api' },
        { 'client-certificate': 'tls.crt', 'client-key': '/keys/tls.key' },
      ),
      '/etc/kc',
    );
    assert.deepEqual(config.certificateAuthority, { pem: 'CA' });
    assert.equal(config.tlsServerName, 'api');
    assert.deepEqual(config.user, {
      clientCertificate: { file: '/etc/kc/tls.crt' },
      clientKey: { file: '/keys/tls.key' },
    });
  });

  it('reads a tokenFile and an exec plugin', () => {
    assert.deepEqual(parseClientConfig(kubeconfig({}, { tokenFile: 'token' }), '/d').user.token, { file: '/d/token' });
    const config = parseClientConfig(
      kubeconfig(
        {},
        {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: 'get-token',
            args: ['--audience', 'x'],
            env: [{ name: 'A', value: 'b' }],
            interactiveMode: 'Never',
          },
        },
      ),
      '/d',
    );
    assert.deepEqual(config.user.exec, {
      apiVersion: 'client.authentication.k8s.io/v1',
      command: 'get-token',
      args: ['--audience', 'x'],
      env: [{ name: 'A', value: 'b' }],
      provideClusterInfo: false,
    });
  });

  it('refuses what the client does not support, naming the field', () => {
    assert.throws(
      () => parseClientConfig(kubeconfig({ 'proxy-url': 'http://proxy' }), '/'),
      refusal(/^clusters\[c\]\.cluster\.proxy-url: not supported/),
    );
    assert.throws(
      () => parseClientConfig(kubeconfig({}, { 'auth-provider': { name: 'gcp' } }), '/'),
      refusal(/^users\[u\]\.user\.auth-provider: not supported/),
    );
    assert.throws(
      () =>
        parseClientConfig(
          kubeconfig({}, { exec: { apiVersion: 'client.authentication.k8s.io/v1alpha1', command: 'x' } }),
          '/',
        ),
      refusal(/^users\[u\]\.user\.exec\.apiVersion: must be one of/),
    );
    assert.throws(
      () => parseClientConfig(kubeconfig({}, { 'client-certificate': 'a.crt' }), '/'),
      refusal(/needs both client-certificate and client-key/),
    );
  });

  it('refuses what client-go refuses: skipping verification with a CA, a bearer credential over http://', () => {
    assert.throws(
      () => parseClientConfig(kubeconfig({ 'insecure-skip-tls-verify': true, 'certificate-authority': 'ca.crt' }), '/'),
      refusal(/^clusters\[c\]\.cluster\.insecure-skip-tls-verify: cannot be set together with a certificate-authority/),
    );
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: 'get-token' };
    for (const [field, value] of [
      ['token', 'secret'],
      ['tokenFile', 'token'],
      ['exec', exec],
    ] as const)
      assert.throws(
        () => parseClientConfig(kubeconfig({ server: 'http://127.0.0.1:8001' }, { [field]: value }), '/'),
        (error: unknown) =>
          refusal(new RegExp(`^users\\[u\\]\\.user\\.${field}: not sent over http://`))(error) &&
          !(error as Error).message.includes('secret'),
      );
    // A local proxy without credentials (kubectl proxy) stays usable.
    assert.doesNotThrow(() => parseClientConfig(kubeconfig({ server: 'http://127.0.0.1:8001' }), '/'));
  });

  it('runs exec plugins as client-go does: never interactively, a relative path from the kubeconfig, a bare name from PATH', () => {
    const exec = (fields: Record<string, unknown>) =>
      parseClientConfig(
        kubeconfig({}, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'get-token', ...fields } }),
        '/etc/kc',
      ).user.exec;
    assert.throws(
      () => exec({ interactiveMode: 'Always' }),
      refusal(/^users\[u\]\.user\.exec\.interactiveMode: Always: the plugin would need a terminal/),
    );
    assert.throws(
      () => exec({ interactiveMode: 'Sometimes' }),
      refusal(/interactiveMode: must be one of Never, IfAvailable/),
    );
    assert.equal(exec({ interactiveMode: 'IfAvailable' })?.command, 'get-token');
    assert.equal(exec({ command: 'bin/get-token' })?.command, '/etc/kc/bin/get-token');
    assert.equal(exec({ command: './get-token' })?.command, '/etc/kc/get-token');
    assert.equal(exec({ command: '/usr/bin/get-token' })?.command, '/usr/bin/get-token');
  });

  it("follows client-go's precedence among a user's credentials: static ones over exec, tokenFile over token", () => {
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: 'get-token' };
    const user = (fields: Record<string, unknown>) => parseClientConfig(kubeconfig({}, fields), '/d').user;
    assert.deepEqual(user({ token: 't', exec }), { token: { value: 't' } });
    assert.deepEqual(user({ 'client-certificate': 'a.crt', 'client-key': 'a.key', exec }), {
      clientCertificate: { file: '/d/a.crt' },
      clientKey: { file: '/d/a.key' },
    });
    assert.deepEqual(user({ token: 't', tokenFile: 'token' }), { token: { file: '/d/token' } });
    assert.equal(user({ exec }).exec?.command, 'get-token');
  });

  it('for a bootstrap kubeconfig, requires https, verification and a credential', () => {
    const bootstrap = { bootstrap: { credentialRequired: true } };
    assert.throws(
      () => parseClientConfig(kubeconfig({ server: 'http://127.0.0.1:1' }, { token: 't' }), '/', bootstrap),
      refusal(/^clusters\[c\]\.cluster\.server: must be an https URL/),
    );
    assert.throws(
      () => parseClientConfig(kubeconfig({ 'insecure-skip-tls-verify': true }, { token: 't' }), '/', bootstrap),
      refusal(/insecure-skip-tls-verify: must not be set/),
    );
    assert.throws(
      () => parseClientConfig(kubeconfig({}, { username: 'nobody' }), '/', bootstrap),
      refusal(/^users\[u\]\.user: has no credential/),
    );
    assert.doesNotThrow(() => parseClientConfig(kubeconfig({}, {}), '/', { bootstrap: { credentialRequired: false } }));
  });
});

describe('in-cluster configuration', () => {
  it('is the service host and port with the ServiceAccount token file and CA', () => {
    assert.deepEqual(
      inClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, '/sa', 'ns'),
      {
        server: 'https://[fd00::1]:443',
        certificateAuthority: { file: '/sa/ca.crt' },
        insecureSkipTlsVerify: false,
        user: { token: { file: '/sa/token' } },
        namespace: 'ns',
      },
    );
    assert.equal(inClusterConfig({}, '/sa', undefined), undefined);
  });
});

describe('exec credentials', () => {
  const v1 = 'client.authentication.k8s.io/v1';
  const output = (status: Record<string, unknown>, apiVersion = v1) =>
    JSON.stringify({ apiVersion, kind: 'ExecCredential', status });

  it('reads a token and its expiry', () => {
    assert.deepEqual(parseExecCredential(output({ token: 't', expirationTimestamp: '2026-01-01T00:10:00Z' }), v1), {
      token: 't',
      expiresAt: Date.parse('2026-01-01T00:10:00Z'),
    });
  });

  it('refuses output of another version or without a credential, never quoting it', () => {
    assert.throws(
      () => parseExecCredential(output({ token: 'secret' }, 'client.authentication.k8s.io/v1beta1'), v1),
      (error: unknown) => {
        assert.ok(error instanceof ClientConfigError && !error.message.includes('secret'));
        return true;
      },
    );
    assert.throws(() => parseExecCredential(output({ clientCertificateData: 'cert' }), v1), ClientConfigError);
    assert.throws(
      () => parseExecCredential('token: secret', v1),
      (error: unknown) => {
        assert.ok(error instanceof ClientConfigError && !error.message.includes('secret'));
        return true;
      },
    );
  });

  it('is stale from its expiry on; one without expiry only when refused', () => {
    const at = Date.parse('2026-01-01T00:10:00Z');
    assert.equal(execCredentialStale({ token: 't', expiresAt: at }, at - 1), false);
    assert.equal(execCredentialStale({ token: 't', expiresAt: at }, at), true);
    assert.equal(execCredentialStale({ token: 't' }, at * 2), false);
  });

  it('gives the plugin the cluster only when provideClusterInfo', () => {
    const exec = { apiVersion: v1, command: 'x', args: [], env: [], provideClusterInfo: true };
    const cluster = { server: 'https://a', insecureSkipTlsVerify: false, user: {} };
    assert.deepEqual(JSON.parse(execInfo(exec, cluster, 'CA')), {
      apiVersion: v1,
      kind: 'ExecCredential',
      spec: { interactive: false, cluster: { server: 'https://a', 'certificate-authority-data': 'Q0E=' } },
    });
    assert.deepEqual(
      (JSON.parse(execInfo({ ...exec, provideClusterInfo: false }, cluster, 'CA')) as { spec: unknown }).spec,
      {
        interactive: false,
      },
    );
  });
});

describe('token files', () => {
  it('are read again a minute after the last read, as client-go does', () => {
    assert.equal(tokenFileStale(1_000, 1_000 + TOKEN_FILE_REREAD_MS - 1), false);
    assert.equal(tokenFileStale(1_000, 1_000 + TOKEN_FILE_REREAD_MS), true);
  });
});
