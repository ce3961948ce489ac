// The approver's API client: every request waits for the rate limit, and requests share one connection pool
// per TLS identity. Checked where client-node asks for credentials; no request is sent.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { approverClient } from '../../../src/approver/kube-client.ts';
import { createCertificateAuthority, issueCertificate } from '../../../scripts/testbed/pki.ts';

const dir = mkdtempSync(join(tmpdir(), 'kcr-kube-client-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const ca = createCertificateAuthority('kube-client-test-ca');
const write = (name: string, content: string) => {
  writeFileSync(join(dir, name), content);
  return join(dir, name);
};
const caFile = write('ca.crt', ca.cert);
const issue = () => issueCertificate(ca, { commonName: 'approver', usage: 'client' });
let client = issue();
const certFile = write('client.crt', client.cert);
const keyFile = write('client.key', client.key);

function setup(user: { name: string; certFile?: string; keyFile?: string; token?: string }) {
  const base = new KubeConfig();
  base.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', caFile, skipTLSVerify: false }],
    users: [user],
    contexts: [{ name: 'c', cluster: 'c', user: user.name }],
    currentContext: 'c',
  });
  let acquired = 0;
  const { kubeConfig } = approverClient(base, {
    acquire: () => {
      acquired++;
      return Promise.resolve();
    },
    waiting: 0,
  });
  const dispatcherOf = async () => {
    const context = new RequestContext('https://127.0.0.1:6443/api', HttpMethod.GET);
    await kubeConfig.applySecurityAuthentication(context);
    return context;
  };
  return { dispatcherOf, acquired: () => acquired };
}

describe("the approver's API client", () => {
  it('waits for the rate limit before every request, and reuses one connection pool', async () => {
    const { dispatcherOf, acquired } = setup({ name: 'u', certFile, keyFile });
    const [first, second, third] = [await dispatcherOf(), await dispatcherOf(), await dispatcherOf()];
    assert.equal(acquired(), 3);
    assert.ok(first.getDispatcher() !== undefined);
    assert.equal(second.getDispatcher(), first.getDispatcher());
    assert.equal(third.getDispatcher(), first.getDispatcher());
  });

  it('opens a new pool when the client certificate files change (a rotated credential)', async () => {
    const { dispatcherOf } = setup({ name: 'u', certFile, keyFile });
    const before = (await dispatcherOf()).getDispatcher();
    client = issue();
    writeFileSync(certFile, client.cert);
    writeFileSync(keyFile, client.key);
    const after = (await dispatcherOf()).getDispatcher();
    assert.notEqual(after, before);
    assert.equal((await dispatcherOf()).getDispatcher(), after);
  });

  it('keeps sending the credential of each request (a token is a header, not part of the pool)', async () => {
    const { dispatcherOf } = setup({ name: 't', token: 'abc.def' });
    const [first, second] = [await dispatcherOf(), await dispatcherOf()];
    assert.equal(first.getHeaders().Authorization, 'Bearer abc.def');
    assert.equal(second.getHeaders().Authorization, 'Bearer abc.def');
    assert.equal(second.getDispatcher(), first.getDispatcher());
  });
});
