import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { certificateProblems, keyMatchesCertificate, readCertificate } from '../../../../src/core/pki/certificate.ts';
import { buildCertificationRequest } from '../../../../src/core/pki/csr.ts';
import { generateKeyPair } from '../../../../src/core/pki/keys.ts';
import { opensslCa } from '../../../support/openssl-ca.ts';

const subject = { commonName: 'agent-a', organizations: ['team-1', 'team-2'] };
const keys = generateKeyPair('ecdsa-p256');
const csr = buildCertificationRequest(subject, keys);
const ca = opensslCa();
after(() => {
  ca.dispose();
});

function expectations(overrides: Partial<Parameters<typeof certificateProblems>[1]> = {}) {
  return { publicKey: keys.publicKey, subject, now: Date.now(), ...overrides };
}

describe('checking an issued certificate before use', () => {
  // Whole seconds: that is all a certificate holds.
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const notAfter = new Date(notBefore.getTime() + 86_400_000);
  const good = readCertificate(ca.sign(csr, { notBefore, notAfter }));

  it('reads subject, serial and validity from the certificate', () => {
    assert.deepEqual(good.subject, subject);
    assert.match(good.serial, /^[0-9A-F]+$/);
    assert.deepEqual([good.notBefore, good.notAfter], [notBefore.getTime(), notAfter.getTime()]);
  });

  it('finds nothing wrong with a certificate for our key, subject and client auth', () => {
    assert.deepEqual(certificateProblems(good, expectations()), []);
    assert.deepEqual(certificateProblems(good, expectations({ issuer: new X509Certificate(ca.certPem) })), []);
  });

  it('refuses a certificate for another key', () => {
    assert.deepEqual(certificateProblems(good, expectations({ publicKey: generateKeyPair('ecdsa-p256').publicKey })), [
      'public key is not the one we generated',
    ]);
  });

  it('refuses another subject, naming both', () => {
    assert.deepEqual(
      certificateProblems(good, expectations({ subject: { commonName: 'agent-b', organizations: ['team-1'] } })),
      ['subject is "CN=agent-a, O=team-1, O=team-2", expected "CN=agent-b, O=team-1"'],
    );
  });

  it('refuses a certificate without the client auth usage', () => {
    const serverOnly = readCertificate(ca.sign(csr, { extensions: ['extendedKeyUsage=serverAuth'] }));
    assert.deepEqual(certificateProblems(serverOnly, expectations()), ['extended key usage lacks client auth']);
    const none = readCertificate(ca.sign(csr, { extensions: ['keyUsage=digitalSignature'] }));
    assert.deepEqual(certificateProblems(none, expectations()), ['extended key usage lacks client auth']);
  });

  it('refuses outside the validity window', () => {
    assert.match(certificateProblems(good, expectations({ now: good.notAfter }))[0] ?? '', /^expired at /);
    assert.match(certificateProblems(good, expectations({ now: good.notBefore - 1 }))[0] ?? '', /^not valid before /);
  });

  it('refuses a certificate from another CA when a signer CA is configured', () => {
    const other = opensslCa('other-ca');
    try {
      const [problem] = certificateProblems(
        readCertificate(other.sign(csr)),
        expectations({ issuer: new X509Certificate(ca.certPem) }),
      );
      assert.match(problem ?? '', /not signed by the configured signer CA \(CN=test-ca\)/);
    } finally {
      other.dispose();
    }
  });

  it('reports every problem at once', () => {
    const problems = certificateProblems(
      readCertificate(ca.sign(csr, { extensions: ['extendedKeyUsage=serverAuth'] })),
      {
        publicKey: generateKeyPair('ecdsa-p256').publicKey,
        subject: { commonName: 'x', organizations: [] },
        now: 0,
      },
    );
    assert.equal(problems.length, 4);
  });

  it('tells whether a PEM key belongs to the certificate', () => {
    assert.ok(keyMatchesCertificate(keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), good));
    assert.ok(
      !keyMatchesCertificate(
        generateKeyPair('ecdsa-p256').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        good,
      ),
    );
    assert.ok(!keyMatchesCertificate('not a key', good));
  });

  it('rejects what is not a certificate', () => {
    assert.throws(
      () => readCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
      /not a PEM certificate/,
    );
  });
});
