// `status --secret` finds a Secret's format from what the format itself wrote, and reads its credential back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectSecretFormat } from '../../../../src/core/secret-format/detect.ts';
import {
  readSecretCredential,
  renderSecret,
  SECRET_FORMATS,
  type SecretFormatSettings,
} from '../../../../src/core/secret-format/formats.ts';

const bundle = {
  name: 'east',
  server: 'https://east.example:6443',
  caPem: 'CA\n',
  credential: { certPem: 'CERT\n', keyPem: 'KEY\n' },
};

describe('a Secret format, detected from the Secret', () => {
  for (const format of SECRET_FORMATS) {
    it(`${format}: detected from its type and labels, and its credential read back`, () => {
      const written: SecretFormatSettings = { format, targetName: 'east', clusterName: 'east-cluster' };
      const secret = renderSecret(bundle, written);
      const detected = detectSecretFormat(secret, 'east');
      assert.equal(detected.format, format);
      const read = readSecretCredential(secret.data, detected);
      assert.equal(read.certPem, 'CERT\n');
      assert.equal(read.keyPem, 'KEY\n');
      assert.equal(read.server, 'https://east.example:6443');
    });
  }

  it('istio: the kubeconfig key is the cluster name its annotation records, not the target name', () => {
    const secret = renderSecret(bundle, { format: 'istio', targetName: 'east', clusterName: 'mesh-east' });
    assert.deepEqual(Object.keys(secret.data), ['mesh-east']);
    assert.equal(detectSecretFormat(secret, 'east').clusterName, 'mesh-east');
  });

  it('a Secret of none of the other formats (no labels, Opaque) is read as a kubeconfig Secret', () => {
    assert.deepEqual(detectSecretFormat({ type: 'Opaque' }, 'east'), { format: 'kubeconfig', targetName: 'east' });
    assert.deepEqual(detectSecretFormat({}, 'east'), { format: 'kubeconfig', targetName: 'east' });
  });
});
