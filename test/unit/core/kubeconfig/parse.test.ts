import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { directoryFiles } from '../../../../src/core/kubeconfig/bundle.ts';
import { parseKubeconfig } from '../../../../src/core/kubeconfig/parse.ts';

const bundle = {
  name: 'east',
  server: 'https://east.example:6443',
  caPem: 'CA\n',
  credential: { certPem: 'CERT\n', keyPem: 'KEY\n' },
};

describe('kubeconfig files of a bundle', () => {
  it('a directory kubeconfig references the three files by relative path and holds no secret', () => {
    const files = directoryFiles(bundle, false);
    assert.deepEqual(Object.keys(files).sort(), ['ca.crt', 'kubeconfig', 'tls.crt', 'tls.key']);
    assert.equal(files['tls.key']?.mode, 0o600);
    assert.equal(files.kubeconfig?.mode, 0o644);
    assert.deepEqual(parseKubeconfig(files.kubeconfig.content), {
      context: 'east',
      server: 'https://east.example:6443',
      certificateAuthority: { file: 'ca.crt' },
      clientCertificate: { file: 'tls.crt' },
      clientKey: { file: 'tls.key' },
    });
  });

  it('an embedded kubeconfig carries the key, so it is written 0600', () => {
    const files = directoryFiles(bundle, true);
    assert.equal(files.kubeconfig?.mode, 0o600);
    assert.deepEqual(parseKubeconfig(files.kubeconfig.content).clientKey, { pem: 'KEY\n' });
  });
});

describe('kubeconfig files of a token bundle', () => {
  it('the token in its own 0600 file, named by tokenFile (client-go re-reads it): the kubeconfig never changes', () => {
    const tokenBundle = { ...bundle, credential: { token: 'TOKEN' } };
    const files = directoryFiles(tokenBundle, false);
    assert.deepEqual(Object.keys(files).sort(), ['ca.crt', 'kubeconfig', 'token']);
    assert.equal(files.token?.mode, 0o600);
    assert.equal(files.kubeconfig?.mode, 0o644);
    assert.deepEqual(parseKubeconfig(files.kubeconfig.content).token, { file: 'token' });
    assert.equal(
      directoryFiles({ ...tokenBundle, credential: { token: 'TOKEN2' } }, false).kubeconfig?.content,
      files.kubeconfig.content,
    );
    const embedded = directoryFiles(tokenBundle, true);
    assert.equal(embedded.kubeconfig?.mode, 0o600);
    assert.deepEqual(parseKubeconfig(embedded.kubeconfig.content).token, { value: 'TOKEN' });
  });
});

describe('parsing a kubeconfig', () => {
  it('names what is missing', () => {
    assert.throws(() => parseKubeconfig('apiVersion: v1\n'), /current-context is not set/);
    assert.throws(() => parseKubeconfig('current-context: x\ncontexts: []\n'), /context "x" does not exist/);
    assert.throws(
      () =>
        parseKubeconfig(
          'current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {}}]\n',
        ),
      /has no server/,
    );
    assert.throws(() => parseKubeconfig('- a\n- b\n: :'), /not YAML|not a kubeconfig/);
  });
});
