import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { renderKubeconfig } from '../../../../src/core/kubeconfig/render.ts';

const CA = '-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n';

describe('kubeconfig rendering', () => {
  it('references certificate files by path, so clients re-read them after a rotation', () => {
    const parsed = parse(
      renderKubeconfig({
        name: 'east',
        server: 'https://10.0.0.1:6443',
        certificateAuthority: { file: '/var/run/kcr/east/ca.crt' },
        credential: {
          clientCertificate: { file: '/var/run/kcr/east/tls.crt' },
          clientKey: { file: '/var/run/kcr/east/tls.key' },
        },
      }),
    ) as Record<string, unknown>;
    assert.deepEqual(parsed, {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'east',
          cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority': '/var/run/kcr/east/ca.crt' },
        },
      ],
      users: [
        {
          name: 'east',
          user: { 'client-certificate': '/var/run/kcr/east/tls.crt', 'client-key': '/var/run/kcr/east/tls.key' },
        },
      ],
      contexts: [{ name: 'east', context: { cluster: 'east', user: 'east' } }],
      'current-context': 'east',
      preferences: {},
    });
  });

  it('embeds base64 PEM data for a self-contained file, and tokens as they are', () => {
    const parsed = parse(
      renderKubeconfig({
        name: 'b',
        server: 'https://h',
        certificateAuthority: { pem: CA },
        credential: { token: 'abcdef.0123456789abcdef' },
        namespace: 'ns',
      }),
    ) as {
      clusters: [{ cluster: Record<string, string> }];
      users: [{ user: Record<string, string> }];
      contexts: [{ context: Record<string, string> }];
    };
    assert.equal(Buffer.from(parsed.clusters[0].cluster['certificate-authority-data'] ?? '', 'base64').toString(), CA);
    assert.deepEqual(parsed.users[0].user, { token: 'abcdef.0123456789abcdef' });
    assert.equal(parsed.contexts[0].context.namespace, 'ns');
  });

  it("writes tls-server-name when the certificate is checked against another name than the server's host", () => {
    const spec = {
      name: 'c',
      server: 'https://127.0.0.1:6443',
      certificateAuthority: { pem: CA },
      credential: { token: 't' },
    };
    const cluster = (text: string) =>
      (parse(text) as { clusters: [{ cluster: Record<string, string> }] }).clusters[0].cluster;
    assert.equal(
      cluster(renderKubeconfig({ ...spec, tlsServerName: 'api.east.example' }))['tls-server-name'],
      'api.east.example',
    );
    assert.equal('tls-server-name' in cluster(renderKubeconfig(spec)), false);
  });
});
