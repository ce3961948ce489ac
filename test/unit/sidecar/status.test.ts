// `status` without a sidecar's annotation estimates the next rotation with the sidecar's default rule.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { buildCertificationRequest } from '../../../src/core/pki/csr.ts';
import { generateKeyPair } from '../../../src/core/pki/keys.ts';
import { formatReport, report, statusOfPath, StatusError, usable } from '../../../src/sidecar/status.ts';
import { opensslCa } from '../../support/openssl-ca.ts';
import { leaseToken } from '../../support/tokens.ts';

const ca = opensslCa('status-ca');
after(() => {
  ca.dispose();
});

const parsed = { context: 'east', server: 'https://east.example:6443' };
const notBefore = Date.parse('2026-11-28T16:00:00Z');

function certificateLasting(seconds: number) {
  const keys = generateKeyPair('ecdsa-p256');
  const certPem = ca.sign(buildCertificationRequest({ commonName: 'agent-a', organizations: ['agents'] }, keys), {
    notBefore: new Date(notBefore),
    notAfter: new Date(notBefore + seconds * 1000),
  });
  return { certPem, keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

describe('status', () => {
  it('without an annotation, the next rotation lies 70-90% into the lifetime', () => {
    const { certPem, keyPem } = certificateLasting(36_000);
    const status = report('test', parsed, { certPem, keyPem }, notBefore);
    assert.equal(status.nextRotationFrom, 'default rule');
    const fraction = (Date.parse(status.nextRotation) - notBefore) / 36_000_000;
    assert.ok(fraction >= 0.7 && fraction <= 0.9, `next rotation at ${String(fraction)} of the lifetime`);
    assert.equal(status.keyMatches, true);
  });

  it('without an annotation, the next rotation is at least 420 s before expiry (the default floor)', () => {
    // 70% of 1400 s leaves exactly 420 s, so every draw of the jitter lands on the same moment.
    const { certPem, keyPem } = certificateLasting(1_400);
    const status = report('test', parsed, { certPem, keyPem }, notBefore);
    assert.equal(status.nextRotation, new Date(notBefore + 980_000).toISOString());
  });

  it('a token: its ID, subject and expiry, the default rule from its ID; never the token itself', () => {
    const token = leaseToken({ issuedAt: notBefore, lifetimeSeconds: 3600 });
    const status = report('test', parsed, { token }, notBefore + 60_000);
    assert.equal(status.kind, 'token');
    assert.equal(status.identity, 'system:serviceaccount:kubeconfig-rotator:kcr-west');
    assert.equal(status.serial, 'b0e6c1a4-0000-4000-8000-000000000001');
    assert.equal(status.secondsLeft, 3540);
    assert.equal(status.keyMatches, undefined);
    assert.equal(usable(status), true);
    const fraction = (Date.parse(status.nextRotation) - notBefore) / 3_600_000;
    assert.ok(fraction >= 0.7 && fraction <= 0.9, `next rotation at ${String(fraction)} of the lifetime`);
    const text = formatReport(status, notBefore + 60_000);
    assert.match(text, /^credential: {4}token$/m);
    assert.match(text, /^token ID: {6}b0e6c1a4/m);
    assert.doesNotMatch(text, /key matches|issuer/);
    assert.ok(!text.includes(token) && !JSON.stringify(status).includes(token));
    assert.equal(usable(report('test', parsed, { token }, notBefore + 3_600_000)), false);
  });

  it('an expired credential names the fix: it recovers by itself after an outage, else bootstrap again or federated', () => {
    const { certPem, keyPem } = certificateLasting(600);
    assert.equal(report('test', parsed, { certPem, keyPem }, notBefore + 599_000).fix, undefined);
    const expired = report('test', parsed, { certPem, keyPem }, notBefore + 700_000);
    assert.match(expired.fix ?? '', /within 30 s of the target's return/);
    assert.match(expired.fix ?? '', /RebootstrapNeeded Event.*run kubeconfig-rotator bootstrap .* again/);
    assert.match(expired.fix ?? '', /--bootstrap-with federated.*check --config/);
    assert.match(formatReport(expired, notBefore + 700_000), /^fix: {11}the sidecar did not renew it in time/m);
    const token = leaseToken({ issuedAt: notBefore, lifetimeSeconds: 3600 });
    assert.match(report('test', parsed, { token }, notBefore + 3_700_000).fix ?? '', /--credential federated/);
  });

  it('nothing published at the path: says the sidecar has no credential yet and where to look', () => {
    assert.throws(
      () => statusOfPath('/nonexistent/kcr-status/out', notBefore),
      (error: unknown) =>
        error instanceof StatusError &&
        /cannot be read: ENOENT.*nothing is published there: .*BootstrapRefused or RebootstrapNeeded Event names the fix/.test(
          error.message,
        ),
    );
  });
});
