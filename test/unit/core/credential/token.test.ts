import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isComplete, readCredential } from '../../../../src/core/credential/credential.ts';
import { tokenRules } from '../../../../src/core/credential/rules.ts';
import { readToken, TokenError } from '../../../../src/core/credential/token.ts';
import { fakeToken, leaseToken } from '../../../support/tokens.ts';

const issuedAt = Date.parse('2026-12-02T08:00:00Z');
const rules = tokenRules({
  serviceAccount: { namespace: 'kubeconfig-rotator', name: 'kcr-west' },
  boundTo: { kind: 'Secret', name: 'kcr-west-lease' },
});

describe('tokens', () => {
  it('reads validity, ID, subject, audiences and the bound object from the claims', () => {
    const facts = readToken(leaseToken({ issuedAt, lifetimeSeconds: 3600 }));
    assert.deepEqual(facts, {
      notBefore: issuedAt,
      notAfter: issuedAt + 3_600_000,
      issuedAt,
      id: 'b0e6c1a4-0000-4000-8000-000000000001',
      subject: 'system:serviceaccount:kubeconfig-rotator:kcr-west',
      audiences: ['https://kubernetes.default.svc'],
      boundTo: { kind: 'Secret', name: 'kcr-west-lease' },
    });
    // RFC 7519 allows one audience as a plain string.
    assert.deepEqual(readToken(fakeToken({ sub: 's', iat: 1, exp: 700, aud: 'vault' })).audiences, ['vault']);
    assert.deepEqual(readToken(fakeToken({ sub: 's', iat: 1, exp: 700 })).audiences, []);
    assert.deepEqual(readCredential({ token: leaseToken({ issuedAt, lifetimeSeconds: 3600 }) }), {
      kind: 'token',
      notBefore: issuedAt,
      notAfter: issuedAt + 3_600_000,
      serial: 'b0e6c1a4-0000-4000-8000-000000000001',
      user: 'system:serviceaccount:kubeconfig-rotator:kcr-west',
      identity: 'system:serviceaccount:kubeconfig-rotator:kcr-west',
    });
  });

  it('without a jti, its ID is a digest of the token: stable, never the token', () => {
    const token = fakeToken({ sub: 'system:serviceaccount:a:b', iat: 1, exp: 700 });
    const { id } = readToken(token);
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(readToken(token).id, id);
    assert.ok(!token.includes(id));
  });

  it('refuses what is not a TokenRequest token, with an error that never quotes it', () => {
    const cases: [string, RegExp][] = [
      ['abcdef.0123456789abcdef', /not a JWT/],
      [`x.${Buffer.from('not json').toString('base64url')}.y`, /not JSON/],
      [fakeToken({ sub: 'system:serviceaccount:a:b', iat: 1 }), /no expiry/],
      [fakeToken({ sub: 'system:serviceaccount:a:b', exp: 700 }), /no issue time/],
      [fakeToken({ iat: 1, exp: 700 }), /no subject/],
    ];
    for (const [token, message] of cases) {
      assert.throws(
        () => readToken(token),
        (error: unknown) =>
          error instanceof TokenError && message.test(error.message) && !error.message.includes(token),
      );
      assert.equal(isComplete({ token }), false);
    }
  });

  it('rules: fits only our ServiceAccount; a new token must be bound to the lease Secret and valid now', () => {
    const good = leaseToken({ issuedAt, lifetimeSeconds: 3600 });
    assert.equal(rules.fits({ token: good }), true);
    assert.deepEqual(rules.problems({ token: good }, issuedAt + 1000), []);
    const other = leaseToken({
      issuedAt,
      lifetimeSeconds: 3600,
      sub: 'system:serviceaccount:kubeconfig-rotator:other',
    });
    assert.equal(rules.fits({ token: other }), false);
    assert.deepEqual(rules.problems({ token: other }, issuedAt), [
      'is for "system:serviceaccount:kubeconfig-rotator:other", expected "system:serviceaccount:kubeconfig-rotator:kcr-west"',
    ]);
    const unbound = fakeToken({ sub: 'system:serviceaccount:kubeconfig-rotator:kcr-west', iat: 1, exp: 4_000_000_000 });
    assert.deepEqual(rules.problems({ token: unbound }, issuedAt), ['is not bound to the Secret kcr-west-lease']);
    assert.deepEqual(rules.problems({ token: good }, issuedAt + 3_600_000), [
      `expired at ${new Date(issuedAt + 3_600_000).toISOString()}`,
    ]);
    assert.deepEqual(rules.problems({ certPem: 'x', keyPem: 'y' }, issuedAt), ['is not a token']);
    assert.equal(rules.fits({ certPem: 'x', keyPem: 'y' }), false);
  });

  // Issue 22: kube-apiserver extends some tokens to a year (--service-account-extend-token-expiration).
  it('rules: a token living longer (exp - iat) than requested was extended by the apiserver: refused, named', () => {
    const asked = tokenRules({
      serviceAccount: { namespace: 'kubeconfig-rotator', name: 'kcr-west' },
      boundTo: { kind: 'Secret', name: 'kcr-west-lease' },
      expirationSeconds: 3607,
    });
    assert.deepEqual(asked.problems({ token: leaseToken({ issuedAt, lifetimeSeconds: 3607 }) }, issuedAt), []);
    // Shorter (the apiserver's maximum) is only renewed sooner.
    assert.deepEqual(asked.problems({ token: leaseToken({ issuedAt, lifetimeSeconds: 600 }) }, issuedAt), []);
    assert.deepEqual(asked.problems({ token: leaseToken({ issuedAt, lifetimeSeconds: 31_536_000 }) }, issuedAt), [
      'lives 31536000 s (exp - iat), longer than the 3607 s requested: the apiserver extended it',
    ]);
    // A token whose nbf is later than its iat is measured from iat all the same.
    const late = fakeToken({
      sub: 'system:serviceaccount:kubeconfig-rotator:kcr-west',
      iat: 1000,
      nbf: 4000,
      exp: 1000 + 3607 + 1,
      'kubernetes.io': { secret: { name: 'kcr-west-lease' } },
    });
    assert.match(asked.problems({ token: late }, 4_000_000).join(), /lives 3608 s/);
  });
});
