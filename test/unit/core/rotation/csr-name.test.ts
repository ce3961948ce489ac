import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { csrName, type RequestIdentity } from '../../../../src/core/rotation/csr-name.ts';

const base: RequestIdentity = {
  subjectPublicKeyInfo: Uint8Array.from([1, 2, 3]),
  subject: { commonName: 'Admiralty Source/East', organizations: ['b', 'a'] },
  usages: ['digital signature', 'client auth'],
  signerName: 'kubernetes.io/kube-apiserver-client',
};

describe('deterministic CSR names', () => {
  it('the same request always gets the same name, whatever the order of O and usages', () => {
    const reordered = {
      ...base,
      subject: { ...base.subject, organizations: ['a', 'b'] },
      usages: ['client auth', 'digital signature'],
    };
    assert.equal(csrName(base), csrName(reordered));
    assert.equal(csrName(base), 'kcr-admiralty-source-east-' + csrName(base).slice(-20));
  });

  it('a different key, subject, usage or signer gets a different name', () => {
    const names = new Set([
      csrName(base),
      csrName({ ...base, subjectPublicKeyInfo: Uint8Array.from([1, 2, 4]) }),
      csrName({ ...base, subject: { ...base.subject, commonName: 'other' } }),
      csrName({ ...base, subject: { ...base.subject, organizations: ['a'] } }),
      csrName({ ...base, subject: { ...base.subject, organizations: ['a', 'b', 'c'] } }),
      csrName({ ...base, usages: ['client auth'] }),
      csrName({ ...base, signerName: 'example.com/signer' }),
    ]);
    assert.equal(names.size, 7);
  });

  it('fields cannot run into each other (O "a,b" is not O "a" plus O "b")', () => {
    assert.notEqual(
      csrName({ ...base, subject: { ...base.subject, organizations: ['ab'] } }),
      csrName({ ...base, subject: { ...base.subject, organizations: ['a', 'b'] } }),
    );
  });

  it('is a valid object name for any common name', () => {
    for (const commonName of ['', '---', 'ÜBER:admin', 'x'.repeat(300), 'system:node:a.b']) {
      const name = csrName({ ...base, subject: { commonName, organizations: [] } });
      assert.match(name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      assert.ok(name.length <= 65, name);
    }
  });
});
