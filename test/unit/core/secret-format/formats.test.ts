import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sidecarConfigSchema } from '../../../../src/core/config/sidecar.ts';
import { parseAndValidate } from '../../../../src/core/config/validate.ts';
import { embeddedKubeconfig } from '../../../../src/core/kubeconfig/bundle.ts';
import { parseKubeconfig } from '../../../../src/core/kubeconfig/parse.ts';
import {
  kubeconfigKey,
  matchesContent,
  readSecretCredential,
  renderSecret,
  type SecretFormatSettings,
} from '../../../../src/core/secret-format/formats.ts';

const bundle = {
  name: 'east',
  server: 'https://east.example:6443',
  caPem: 'CA\n',
  credential: { certPem: 'CERT\n', keyPem: 'KEY\n' },
};
const renewed = { ...bundle, credential: { certPem: 'CERT2\n', keyPem: 'KEY2\n' } };
const managed = { 'app.kubernetes.io/managed-by': 'kubeconfig-rotator' };
const base64 = (text: string) => Buffer.from(text).toString('base64');

function settings(extra: Partial<SecretFormatSettings> & Pick<SecretFormatSettings, 'format'>): SecretFormatSettings {
  return { targetName: 'east', ...extra };
}

describe('Secret formats', () => {
  it('kubeconfig: the embedded kubeconfig under "config", plus the PEM files, as before formats existed', () => {
    assert.deepEqual(renderSecret(bundle, settings({ format: 'kubeconfig' })), {
      type: 'Opaque',
      labels: managed,
      annotations: {},
      data: { config: embeddedKubeconfig(bundle), 'tls.crt': 'CERT\n', 'tls.key': 'KEY\n', 'ca.crt': 'CA\n' },
    });
  });

  it('kubeconfig: another key, no tls.* keys, the current context set', () => {
    const content = renderSecret(bundle, settings({ format: 'kubeconfig', key: 'kubeconfig', tlsKeys: false }));
    assert.deepEqual(Object.keys(content.data), ['kubeconfig']);
    assert.equal(parseKubeconfig(content.data.kubeconfig ?? '').context, 'east');
  });

  it('argocd: name, server and config JSON with base64 PEM, labelled as a cluster, named after the target', () => {
    const content = renderSecret(bundle, settings({ format: 'argocd' }));
    assert.equal(content.type, 'Opaque');
    assert.deepEqual(content.labels, { 'argocd.argoproj.io/secret-type': 'cluster', ...managed });
    assert.deepEqual(Object.keys(content.data).sort(), ['config', 'name', 'server']);
    assert.equal(content.data.name, 'east');
    assert.equal(content.data.server, 'https://east.example:6443');
    assert.deepEqual(JSON.parse(content.data.config ?? ''), {
      tlsClientConfig: {
        insecure: false,
        caData: base64('CA\n'),
        certData: base64('CERT\n'),
        keyData: base64('KEY\n'),
      },
    });
    assert.equal(renderSecret(bundle, settings({ format: 'argocd', clusterName: 'prod-east' })).data.name, 'prod-east');
  });

  it('istio: one key, the cluster ID, holding the kubeconfig; label and cluster annotation', () => {
    const content = renderSecret(bundle, settings({ format: 'istio', clusterName: 'cluster-east' }));
    assert.deepEqual(Object.keys(content.data), ['cluster-east']);
    assert.deepEqual(content.labels, { 'istio/multiCluster': 'true', ...managed });
    assert.deepEqual(content.annotations, { 'networking.istio.io/cluster': 'cluster-east' });
    assert.equal(parseKubeconfig(content.data['cluster-east'] ?? '').server, bundle.server);
  });

  it('cluster-api: type cluster.x-k8s.io/secret, key value, the cluster-name label', () => {
    const content = renderSecret(bundle, settings({ format: 'cluster-api' }));
    assert.equal(content.type, 'cluster.x-k8s.io/secret');
    assert.deepEqual(Object.keys(content.data), ['value']);
    assert.deepEqual(content.labels, { 'cluster.x-k8s.io/cluster-name': 'east', ...managed });
  });

  it('flux: key value, the watch label; linkerd: its type, key kubeconfig', () => {
    const flux = renderSecret(bundle, settings({ format: 'flux' }));
    assert.deepEqual(Object.keys(flux.data), ['value']);
    assert.deepEqual(flux.labels, { 'reconcile.fluxcd.io/watch': 'Enabled', ...managed });
    const linkerd = renderSecret(bundle, settings({ format: 'linkerd' }));
    assert.equal(linkerd.type, 'mirror.linkerd.io/remote-kubeconfig');
    assert.deepEqual(Object.keys(linkerd.data), ['kubeconfig']);
  });

  it("the user's labels and annotations are added, the format's own win", () => {
    const content = renderSecret(
      bundle,
      settings({ format: 'flux', labels: { team: 'a', 'reconcile.fluxcd.io/watch': 'x' }, annotations: { note: 'n' } }),
    );
    assert.deepEqual(content.labels, { team: 'a', 'reconcile.fluxcd.io/watch': 'Enabled', ...managed });
    assert.deepEqual(content.annotations, { note: 'n' });
  });

  it('reference mode: cert and key by path, the CA inline, the same content after a renewal', () => {
    const reference = settings({ format: 'linkerd', referenceDirectory: '/var/run/kcr/east' });
    const content = renderSecret(bundle, reference);
    assert.deepEqual(renderSecret(renewed, reference), content);
    const parsed = parseKubeconfig(content.data.kubeconfig ?? '');
    assert.deepEqual(parsed.clientCertificate, { file: '/var/run/kcr/east/tls.crt' });
    assert.deepEqual(parsed.clientKey, { file: '/var/run/kcr/east/tls.key' });
    assert.deepEqual(parsed.certificateAuthority, { pem: 'CA\n' });
    assert.notDeepEqual(renderSecret({ ...bundle, caPem: 'CA2\n' }, reference), content);
    assert.deepEqual(readSecretCredential(content.data, reference), { server: bundle.server, caPem: 'CA\n' });
  });

  it('every format reads back the credential it wrote', () => {
    for (const format of ['kubeconfig', 'argocd', 'istio', 'cluster-api', 'flux', 'linkerd'] as const) {
      const these = settings({ format });
      assert.deepEqual(
        readSecretCredential(renderSecret(bundle, these).data, these),
        { server: bundle.server, certPem: 'CERT\n', keyPem: 'KEY\n', caPem: 'CA\n' },
        format,
      );
    }
    assert.deepEqual(readSecretCredential({ config: '{not json' }, settings({ format: 'argocd' })), {});
    assert.deepEqual(readSecretCredential({ value: 'a: [' }, settings({ format: 'flux' })), {});
  });

  it('tokens: every format embeds the token (Argo CD as bearerToken), kubeconfig adds token and ca.crt, and reads it back', () => {
    const tokenBundle = { ...bundle, credential: { token: 'TOKEN' } };
    for (const format of ['kubeconfig', 'argocd', 'istio', 'cluster-api', 'flux', 'linkerd'] as const) {
      const these = settings({ format });
      assert.deepEqual(
        readSecretCredential(renderSecret(tokenBundle, these).data, these),
        { server: bundle.server, token: 'TOKEN', caPem: 'CA\n' },
        format,
      );
    }
    const kubeconfig = renderSecret(tokenBundle, settings({ format: 'kubeconfig' }));
    assert.deepEqual(Object.keys(kubeconfig.data).sort(), ['ca.crt', 'config', 'token']);
    assert.deepEqual(parseKubeconfig(kubeconfig.data.config ?? '').token, { value: 'TOKEN' });
    assert.deepEqual(JSON.parse(renderSecret(tokenBundle, settings({ format: 'argocd' })).data.config ?? ''), {
      bearerToken: 'TOKEN',
      tlsClientConfig: { insecure: false, caData: base64('CA\n') },
    });
  });

  // Issue 22: a target known by an address its certificate does not name (a load balancer, 127.0.0.1) worked
  // for the bootstrap credential only; every consumer of what we published then failed hostname verification.
  it('every format carries the tls-server-name, in reference mode too (Argo CD as tlsClientConfig.serverName), and reads it back', () => {
    const named = { ...bundle, server: 'https://10.0.0.9:6443', tlsServerName: 'east.example' };
    for (const format of ['kubeconfig', 'argocd', 'istio', 'cluster-api', 'flux', 'linkerd'] as const) {
      const these = settings({ format });
      const content = renderSecret(named, these);
      const key = kubeconfigKey(these);
      if (key !== undefined)
        assert.equal(parseKubeconfig(content.data[key] ?? '').tlsServerName, 'east.example', format);
      assert.equal(readSecretCredential(content.data, these).tlsServerName, 'east.example', format);
      assert.ok(!matchesContent({ ...content, data: renderSecret(bundle, these).data }, content), format);
    }
    assert.deepEqual(JSON.parse(renderSecret(named, settings({ format: 'argocd' })).data.config ?? ''), {
      tlsClientConfig: {
        insecure: false,
        serverName: 'east.example',
        caData: base64('CA\n'),
        certData: base64('CERT\n'),
        keyData: base64('KEY\n'),
      },
    });
    const reference = settings({ format: 'linkerd', referenceDirectory: '/var/run/kcr/east' });
    assert.equal(parseKubeconfig(renderSecret(named, reference).data.kubeconfig ?? '').tlsServerName, 'east.example');
  });

  it('tokens in reference mode: the kubeconfig names the token file, so a new token leaves the Secret as it was', () => {
    const reference = settings({ format: 'kubeconfig', referenceDirectory: '/var/run/kcr/east' });
    const content = renderSecret({ ...bundle, credential: { token: 'TOKEN' } }, reference);
    assert.deepEqual(renderSecret({ ...bundle, credential: { token: 'TOKEN2' } }, reference), content);
    assert.deepEqual(parseKubeconfig(content.data.config ?? '').token, { file: '/var/run/kcr/east/token' });
  });

  it('a Secret matches only with the exact keys, the type and the labels the format needs', () => {
    const these = settings({ format: 'istio' });
    const content = renderSecret(bundle, these);
    const actual = { type: content.type, labels: { ...content.labels }, annotations: { ...content.annotations } };
    assert.ok(matchesContent({ ...actual, data: content.data }, content));
    // Istio would read an extra key as a broken cluster.
    assert.ok(!matchesContent({ ...actual, data: { ...content.data, 'tls.crt': 'CERT\n' } }, content));
    assert.ok(!matchesContent({ ...actual, labels: managed, data: content.data }, content));
    assert.ok(!matchesContent({ ...actual, type: 'kubernetes.io/tls', data: content.data }, content));
    assert.ok(!matchesContent({ ...actual, data: renderSecret(renewed, these).data }, content));
  });
});

describe('Secret sink configuration', () => {
  const target = (secret: string, directory = '') => `
targets:
  - name: east
    bootstrapKubeconfig: /b
    identity: { commonName: agent-east }
    sinks: { ${directory}secret: ${secret} }
`;
  function problems(text: string): string[] {
    const result = parseAndValidate(text, sidecarConfigSchema);
    assert.ok(!result.ok, 'expected the config to be refused');
    return result.problems.map((problem) => `${problem.path}: ${problem.message}`);
  }

  it('accepts each format with its own fields', () => {
    for (const secret of [
      '{ namespace: argocd, name: east, format: argocd, clusterName: prod-east, labels: { team: a } }',
      '{ namespace: istio-system, name: istio-remote-secret-east, format: istio }',
      '{ namespace: default, name: east-kubeconfig, format: cluster-api }',
      '{ namespace: flux-system, name: east, format: flux, key: value.yaml }',
    ]) {
      const result = parseAndValidate(target(secret), sidecarConfigSchema);
      assert.ok(result.ok, secret);
    }
    const reference = parseAndValidate(
      target(
        '{ namespace: linkerd-multicluster, name: east, format: linkerd, reference: {} }',
        'directory: { path: /d }, ',
      ),
      sidecarConfigSchema,
    );
    assert.ok(reference.ok);
  });

  it('names every field that does not fit the format', () => {
    assert.deepEqual(
      problems(
        target(
          '{ namespace: argocd, name: east, format: argocd, key: config, tlsKeys: true, reference: {}, labels: { argocd.argoproj.io/secret-type: x } }',
        ),
      ).sort(),
      [
        'targets[0].sinks.secret.key: is fixed by format argocd; set it only with kubeconfig, flux, linkerd',
        'targets[0].sinks.secret.labels: argocd.argoproj.io/secret-type is set by format argocd',
        "targets[0].sinks.secret.reference: format argocd's consumer accepts no file paths; use it with kubeconfig, linkerd",
        'targets[0].sinks.secret.reference: needs a directory sink (the files it references)',
        'targets[0].sinks.secret.tlsKeys: format argocd reads no tls.* keys; set it only with format kubeconfig',
        'targets[0].sinks.secret.tlsKeys: would change the Secret at every rotation, which reference mode exists to avoid',
      ],
    );
  });

  it('refuses a Cluster API Secret not named <cluster>-kubeconfig and a reference without a directory sink', () => {
    assert.deepEqual(problems(target('{ namespace: d, name: east, format: cluster-api, clusterName: c1 }')), [
      'targets[0].sinks.secret.name: must be c1-kubeconfig (Cluster API reads <cluster>-kubeconfig)',
    ]);
    assert.deepEqual(problems(target('{ namespace: d, name: east, reference: {} }')), [
      'targets[0].sinks.secret.reference: needs a directory sink (the files it references)',
    ]);
  });

  it('refuses malformed label keys and values, naming them', () => {
    const found = problems(target('{ namespace: d, name: east, labels: { "bad key": "ok", good: "bad value!" } }'));
    assert.equal(found.length, 2);
    assert.ok(found.every((problem) => problem.startsWith('targets[0].sinks.secret.labels')));
  });
});
