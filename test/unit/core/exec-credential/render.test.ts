// The exec credential plugin's pure part: where it reads (KUBERNETES_EXEC_INFO's ClusterProfile extension, or
// flags), what it reads from a directory's files or a Secret, and the ExecCredential it prints, whose expiry is
// the next rotation (never past the credential's own), on a manual clock.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { accessProvider, EXEC_EXTENSION, execExtensionSchema } from '../../../../src/core/exec-credential/extension.ts';
import {
  fromDirectoryFiles,
  parseRotationFile,
  renderRotationFile,
} from '../../../../src/core/exec-credential/published.ts';
import { parseExecExtension } from '../../../../src/core/exec-credential/read-extension.ts';
import { fromSecret } from '../../../../src/core/exec-credential/secret.ts';
import {
  CredentialUnavailableError,
  ExecUsageError,
  execRequest,
  expirationOf,
  OVERDUE_RETRY_MS,
  renderExecCredential,
  type ExecRequest,
} from '../../../../src/core/exec-credential/render.ts';
import { readCredential } from '../../../../src/core/credential/credential.ts';
import { renderSecret } from '../../../../src/core/secret-format/formats.ts';
import { credentialBundle } from '../../../support/credential-bundle.ts';
import { ManualClock } from '../../../support/manual-clock.ts';
import { opensslCa } from '../../../support/openssl-ca.ts';
import { leaseToken } from '../../../support/tokens.ts';

const ca = opensslCa('exec-credential-ca');
after(() => {
  ca.dispose();
});

const clock = new ManualClock(Date.now());
const START = clock.now();
const HOUR = 3_600_000;
const bundle = credentialBundle(ca, { notBefore: START - 60_000, notAfter: START + HOUR });
const certificate = bundle.credential as { certPem: string; keyPem: string };
const token = leaseToken({ issuedAt: START - 60_000, lifetimeSeconds: 3600 });

const execInfo = (config: unknown, apiVersion = 'client.authentication.k8s.io/v1') =>
  JSON.stringify({
    apiVersion,
    kind: 'ExecCredential',
    spec: { interactive: false, cluster: { server: 'https://east:6443', config } },
  });
const directoryRequest: ExecRequest = {
  apiVersion: 'client.authentication.k8s.io/v1',
  source: { kind: 'directory', path: '/var/run/kcr/east', target: 'east' },
};
const seconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

describe('the credential source', () => {
  it('from the ClusterProfile extension in KUBERNETES_EXEC_INFO: a directory, or a Secret; the version answered in', () => {
    assert.deepEqual(execRequest(execInfo({ directory: '/var/run/kcr/east', target: 'east' }), {}), directoryRequest);
    assert.deepEqual(
      execRequest(
        execInfo({ secret: { namespace: 'ns', name: 'kcr-east' } }, 'client.authentication.k8s.io/v1beta1'),
        {},
      ),
      {
        apiVersion: 'client.authentication.k8s.io/v1beta1',
        source: { kind: 'secret', namespace: 'ns', name: 'kcr-east' },
      },
    );
  });

  it('flags win over the extension, and work without KUBERNETES_EXEC_INFO (a kubeconfig user)', () => {
    const fromFlags = execRequest(execInfo({ directory: '/elsewhere' }), { secretNamespace: 'a', secretName: 'b' });
    assert.deepEqual(fromFlags.source, { kind: 'secret', namespace: 'a', name: 'b' });
    assert.deepEqual(execRequest(undefined, { directory: '/d' }).source, { kind: 'directory', path: '/d' });
  });

  it('bad usage names every problem: no source, both sources, a relative directory, half a Secret, bad exec info', () => {
    const caught = (info: string | undefined, flags: Parameters<typeof execRequest>[1]): readonly string[] => {
      try {
        execRequest(info, flags);
      } catch (error) {
        if (error instanceof ExecUsageError) return error.problems;
      }
      assert.fail('no ExecUsageError');
    };
    assert.match(caught(undefined, {}).join(), /no credential source/);
    assert.match(caught(undefined, { directory: '/d', secretName: 'x' }).join(), /exclude each other/);
    assert.match(caught(undefined, { directory: 'relative' }).join(), /absolute path/);
    assert.deepEqual(caught(undefined, { secretName: 'x' }), ['--secret-namespace is required']);
    assert.match(caught('{', {}).join(), /not a JSON object/);
    assert.match(caught(execInfo({}, 'client.authentication.k8s.io/v1alpha1'), {}).join(), /apiVersion/);
    assert.match(caught(execInfo({ name: 's', key: 'k', namespace: 'n' }), {}).join(), /spec\.cluster\.config/);
  });

  it("the contract's access provider carries the extension the plugin parses, and the CA as base64", () => {
    const entry = accessProvider(
      'kubeconfig-rotator',
      { server: 'https://east:6443', caPem: ca.certPem },
      { directory: '/d', target: 'east' },
    );
    assert.equal(entry.cluster.extensions[0].name, EXEC_EXTENSION);
    assert.ok(execExtensionSchema.safeParse(entry.cluster.extensions[0].extension).success);
    assert.equal(Buffer.from(entry.cluster['certificate-authority-data'], 'base64').toString(), ca.certPem);
  });
});

describe("the plugin's reading of the extension", () => {
  it("accepts exactly what the contract's zod schema accepts", () => {
    const values: unknown[] = [
      { directory: '/d' },
      { directory: '/d', target: 'east' },
      { directory: 'relative' },
      { directory: '' },
      { directory: 1 },
      { directory: '/d', extra: 1 },
      { directory: '/d', target: '' },
      { directory: '/d', target: 'x'.repeat(254) },
      { secret: { namespace: 'ns', name: 'n' } },
      { secret: { namespace: 'ns', name: 'n' }, target: 'east' },
      { secret: { namespace: 'ns' } },
      { secret: { namespace: 'ns', name: 'n', key: 'k' } },
      { secret: { namespace: '', name: 'n' } },
      { secret: 'ns/n' },
      { directory: '/d', secret: { namespace: 'ns', name: 'n' } },
      { name: 's', key: 'k', namespace: 'n' },
      {},
      [],
      null,
      'x',
    ];
    for (const value of values) {
      const zod = execExtensionSchema.safeParse(value);
      assert.deepEqual(parseExecExtension(value), zod.success ? zod.data : undefined, JSON.stringify(value));
    }
  });
});

describe('the ExecCredential', () => {
  it('a certificate and its key, expiring at the next rotation (seconds, rounded down)', () => {
    const nextRotation = START + 30 * 60_000 + 999;
    const out: unknown = JSON.parse(
      renderExecCredential(directoryRequest, { credential: certificate, nextRotation }, clock.now()),
    );
    assert.deepEqual(out, {
      apiVersion: 'client.authentication.k8s.io/v1',
      kind: 'ExecCredential',
      status: {
        clientCertificateData: certificate.certPem,
        clientKeyData: certificate.keyPem,
        expirationTimestamp: seconds(nextRotation),
      },
    });
  });

  it('a token, in the version client-go asked in', () => {
    const request: ExecRequest = { ...directoryRequest, apiVersion: 'client.authentication.k8s.io/v1beta1' };
    const out = JSON.parse(renderExecCredential(request, { credential: { token } }, clock.now())) as {
      apiVersion: string;
      status: Record<string, string>;
    };
    assert.equal(out.apiVersion, 'client.authentication.k8s.io/v1beta1');
    assert.equal(out.status.token, token);
    // No next rotation recorded: the token's own expiry.
    assert.equal(out.status.expirationTimestamp, seconds(START - 60_000 + HOUR));
  });

  it('never expires past the credential: a next rotation after the expiry is cut to it', () => {
    assert.equal(expirationOf(START + 2 * HOUR, START + HOUR, START), START + HOUR);
  });

  it('an overdue rotation (not yet published) hands the still valid credential out again, asked for again soon', async () => {
    await clock.advance(31 * 60_000);
    const nextRotation = START + 30 * 60_000;
    assert.equal(expirationOf(nextRotation, START + HOUR, clock.now()), clock.now() + OVERDUE_RETRY_MS);
    // ...but not past the expiry either.
    assert.equal(expirationOf(nextRotation, clock.now() + 1000, clock.now()), clock.now() + 1000);
  });

  it('an expired credential is refused, naming where it is and when it expired; no key in the message', async () => {
    await clock.advance(HOUR);
    assert.throws(
      () => renderExecCredential(directoryRequest, { credential: certificate }, clock.now()),
      (error: unknown) =>
        error instanceof CredentialUnavailableError &&
        error.message.includes('directory /var/run/kcr/east (target east)') &&
        error.message.includes(`expired at ${new Date(readCredential(certificate).notAfter).toISOString()}`) &&
        !error.message.includes('PRIVATE KEY'),
    );
  });
});

describe('what the sinks published', () => {
  const source = directoryRequest.source;

  it("a directory version's files: tls.crt and tls.key, or token, with rotation.json's next rotation", () => {
    const nextRotation = START + 1234;
    const rotation = renderRotationFile(nextRotation);
    assert.equal(parseRotationFile(rotation), nextRotation);
    assert.deepEqual(
      fromDirectoryFiles(source, {
        'tls.crt': certificate.certPem,
        'tls.key': certificate.keyPem,
        'rotation.json': rotation,
      }),
      { credential: certificate, nextRotation },
    );
    assert.deepEqual(fromDirectoryFiles(source, { token: `${token}\n` }), { credential: { token } });
    assert.equal(parseRotationFile('not json'), undefined);
    assert.throws(() => fromDirectoryFiles(source, { 'tls.crt': certificate.certPem }), /no credential published yet/);
  });

  it('a Secret sink in any format (detected), with its next-rotation annotation', () => {
    const secretSource = { kind: 'secret' as const, namespace: 'argocd', name: 'cluster-east' };
    for (const format of ['kubeconfig', 'argocd', 'istio', 'cluster-api', 'flux'] as const) {
      const content = renderSecret(bundle, { format, targetName: 'east' });
      const secret = {
        type: content.type,
        metadata: {
          labels: content.labels,
          annotations: {
            ...content.annotations,
            'kubeconfig-rotator.io/target': 'east',
            'kubeconfig-rotator.io/next-rotation': new Date(START + 5000).toISOString(),
          },
        },
        data: Object.fromEntries(
          Object.entries(content.data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]),
        ),
      };
      assert.deepEqual(
        fromSecret(secretSource, secret),
        { credential: certificate, nextRotation: START + 5000 },
        format,
      );
    }
    assert.throws(
      () => fromSecret(secretSource, { data: {} }),
      /no credential published yet in Secret argocd\/cluster-east/,
    );
  });
});
