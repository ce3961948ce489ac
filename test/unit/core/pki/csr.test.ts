import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { buildCertificationRequest } from '../../../../src/core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair, KEY_ALGORITHMS } from '../../../../src/core/pki/keys.ts';

/** stdout and stderr together: openssl 3.0 reports a failed `req -verify` on stderr with exit status 0. */
function openssl(args: string[], input: string): string {
  const result = spawnSync('openssl', args, { input, encoding: 'utf8' });
  if (result.error !== undefined) throw result.error;
  return result.stdout + result.stderr;
}

describe('PKCS#10 requests', () => {
  for (const algorithm of KEY_ALGORITHMS) {
    it(`a ${algorithm} request verifies with openssl and carries the subject and our key`, () => {
      const keys = generateKeyPair(algorithm);
      const pem = buildCertificationRequest({ commonName: 'agent-a', organizations: ['team-1', 'team-2'] }, keys);
      assert.match(pem, /^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n$/);
      const text = openssl(['req', '-verify', '-noout', '-subject', '-pubkey', '-nameopt', 'RFC2253'], pem);
      assert.match(text, /self-signature verify OK/);
      assert.match(text, /^subject=CN=agent-a,O=team-2,O=team-1$/m);
      const publicKeyPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
      assert.ok(text.includes(publicKeyPem.trim()), 'the request carries our public key');
    });
  }

  it('a request signed by another key fails openssl verification', () => {
    const keys = generateKeyPair('ecdsa-p256');
    const other = generateKeyPair('ecdsa-p256');
    const forged = buildCertificationRequest(
      { commonName: 'agent-a', organizations: [] },
      { ...keys, privateKey: other.privateKey },
    );
    const text = openssl(['req', '-verify', '-noout'], forged);
    assert.match(text, /self-signature verify failure/);
    assert.doesNotMatch(text, /verify OK/);
  });

  it('UTF-8 names survive encoding', () => {
    const pem = buildCertificationRequest(
      { commonName: 'agent-é', organizations: ['ümlaut'] },
      generateKeyPair('ecdsa-p256'),
    );
    const text = openssl(['req', '-noout', '-subject', '-nameopt', 'RFC2253,-esc_msb,utf8'], pem);
    assert.match(text, /^subject=CN=agent-é,O=ümlaut$/m);
  });

  it('usages: ECDSA keys sign only; RSA keys may also encipher', () => {
    assert.deepEqual(clientUsagesFor('ecdsa-p256'), ['digital signature', 'client auth']);
    assert.deepEqual(clientUsagesFor('rsa-2048'), ['digital signature', 'key encipherment', 'client auth']);
  });
});
