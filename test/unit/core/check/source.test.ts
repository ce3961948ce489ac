// The pure decisions on the source: what bootstrap left (the bootstrap Secret, its kubeconfig's endpoint), and the
// injector's webhook.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isTlsVerificationCode } from '../../../../src/core/check/common.ts';
import {
  bootstrapSecretCheck,
  injectorWebhookCheck,
  labelSelectorString,
  publishedEndpointCheck,
} from '../../../../src/core/check/source.ts';

describe('bootstrapSecretCheck', () => {
  it('fails an absent bootstrap Secret with the bootstrap command', () => {
    const result = bootstrapSecretCheck('ns/s', { exists: false, hasKubeconfig: false });
    assert.equal(result.status, 'fail');
    assert.match(result.fix ?? '', /kubeconfig-rotator bootstrap/);
    assert.equal(bootstrapSecretCheck('ns/s', { exists: true, hasKubeconfig: true }).status, 'pass');
  });
});

describe('publishedEndpointCheck', () => {
  const endpoint = { server: 'https://127.0.0.1:6443', tlsServerName: 'api.east' };

  it('passes any HTTP answer, fails a certificate that does not verify, and only warns an unreachable server', () => {
    assert.equal(publishedEndpointCheck('Secret a/b', endpoint, { result: 'answered' }).status, 'pass');
    const tls = publishedEndpointCheck('Secret a/b', endpoint, { result: 'tls', message: 'altnames' });
    assert.equal(tls.status, 'fail');
    assert.match(tls.detail, /does not verify with the kubeconfig's CA for name api\.east: altnames/);
    assert.match(tls.fix ?? '', /run bootstrap again/);
    const away = publishedEndpointCheck('Secret a/b', endpoint, { result: 'unreachable', message: 'ETIMEDOUT' });
    assert.equal(away.status, 'warn');
    assert.match(away.detail, /not checked/);
    assert.equal(publishedEndpointCheck('Secret a/b', endpoint, { result: 'invalid', message: 'yaml' }).status, 'fail');
  });

  it("tells Node's certificate verification codes from network ones", () => {
    for (const code of [
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'CERT_HAS_EXPIRED',
      'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    ])
      assert.ok(isTlsVerificationCode(code), code);
    for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'ECONNRESET'])
      assert.ok(!isTlsVerificationCode(code), code);
  });
});

describe('labelSelectorString and injectorWebhookCheck', () => {
  it("writes a namespaceSelector as a list's label selector", () => {
    assert.equal(
      labelSelectorString({
        matchLabels: { 'kubeconfig-rotator.io/injection': 'enabled' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['a', 'b'] },
          { key: 'skip', operator: 'DoesNotExist' },
        ],
      }),
      'kubeconfig-rotator.io/injection=enabled,tier in (a,b),!skip',
    );
    assert.equal(labelSelectorString({}), '');
  });

  it("passes an answer (injected or refused), fails the apiserver's call failing, warns an unchanged pod", () => {
    assert.equal(injectorWebhookCheck('w', { result: 'injected', namespace: 'a' }).status, 'pass');
    assert.equal(
      injectorWebhookCheck('w', { result: 'denied', namespace: 'a', message: 'unknown target' }).status,
      'pass',
    );
    const failed = injectorWebhookCheck('w', { result: 'failed', namespace: 'a', message: 'x509: unknown authority' });
    assert.equal(failed.status, 'fail');
    assert.match(failed.detail, /x509/);
    assert.match(failed.fix ?? '', /caBundle of MutatingWebhookConfiguration w/);
    assert.equal(injectorWebhookCheck('w', { result: 'unchanged', namespace: 'a' }).status, 'warn');
    assert.equal(injectorWebhookCheck('w', { result: 'noNamespace', selector: 'x=y' }).status, 'warn');
  });
});
