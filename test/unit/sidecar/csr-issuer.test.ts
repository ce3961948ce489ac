// The CSR issuer against a fake API server (plain HTTP on loopback): create or adopt, then list + watch of
// the one CSR, with what the server answers scripted by each test.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { V1CertificateSigningRequest } from '@kubernetes/client-node';
import { buildCertificationRequest } from '../../../src/core/pki/csr.ts';
import { generateKeyPair } from '../../../src/core/pki/keys.ts';
import { systemClock } from '../../../src/io/clock.ts';
import { createKubeClient, type KubeClient } from '../../../src/io/kube/rest.ts';
import { createLogger } from '../../../src/io/log.ts';
import { CsrIssuer, type CertificateRequestSpec } from '../../../src/sidecar/csr-issuer.ts';
import { RotationError } from '../../../src/sidecar/errors.ts';
import type { PendingRequest, PendingStore } from '../../../src/sidecar/pending-store.ts';

const CSRS = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

/** Answers create, read and list from `csr`; a watch stays open without events until the client leaves. */
class FakeApi {
  csr: V1CertificateSigningRequest | undefined;
  readonly requests: string[] = [];
  readonly #server = createServer((request, response) => {
    this.#answer(request, response);
  });

  /** What it holds now (read through a method: the compiler would narrow the field across awaits). */
  stored(): V1CertificateSigningRequest | undefined {
    return this.csr;
  }

  async start(): Promise<KubeClient> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    // Plain HTTP: nothing here is secret, and the fake needs no serving certificate.
    return createKubeClient({
      server: `http://127.0.0.1:${String(port)}`,
      insecureSkipTlsVerify: false,
      user: { token: { value: 'abcdef.0123456789abcdef' } },
    });
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #answer(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://fake');
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (request.method === 'POST' && url.pathname === CSRS) {
      this.requests.push('create');
      if (this.csr !== undefined) {
        send(409, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'AlreadyExists', code: 409 });
        return;
      }
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      request.on('end', () => {
        const created = JSON.parse(body) as V1CertificateSigningRequest;
        this.csr = { ...created, metadata: { ...created.metadata, uid: 'uid-1', resourceVersion: '1' } };
        send(201, this.csr);
      });
      return;
    }
    if (request.method === 'GET' && url.pathname.startsWith(`${CSRS}/`) && this.csr !== undefined) {
      this.requests.push('read');
      send(200, this.csr);
      return;
    }
    if (request.method === 'GET' && url.pathname === CSRS && url.searchParams.get('watch') === 'true') {
      this.requests.push('watch');
      response.writeHead(200, { 'content-type': 'application/json' });
      return;
    }
    if (request.method === 'GET' && url.pathname === CSRS) {
      this.requests.push('list');
      send(200, {
        kind: 'CertificateSigningRequestList',
        apiVersion: 'certificates.k8s.io/v1',
        metadata: { resourceVersion: '1' },
        items: this.csr === undefined ? [] : [this.csr],
      });
      return;
    }
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
  }
}

class MemoryPendingStore implements PendingStore {
  saved: PendingRequest | undefined;

  load(): Promise<PendingRequest | undefined> {
    return Promise.resolve(this.saved);
  }

  save(request: PendingRequest): Promise<void> {
    this.saved = request;
    return Promise.resolve();
  }

  clear(): Promise<void> {
    this.saved = undefined;
    return Promise.resolve();
  }
}

const NOW = Date.parse('2026-11-28T16:40:00Z');

const spec: Omit<CertificateRequestSpec, 'approvalTimeoutMs'> = {
  subject: { commonName: 'agent-a', organizations: ['agents'] },
  keyAlgorithm: 'ecdsa-p256',
  signerName: 'kubernetes.io/kube-apiserver-client',
  expirationSeconds: 3600,
};

function issuer(pending: PendingStore, approvalTimeoutMs: number): CsrIssuer {
  return new CsrIssuer({
    spec: { ...spec, approvalTimeoutMs },
    pending,
    // Real sleeps, from a fixed wall-clock time.
    clock: { ...systemClock, now: () => NOW },
    logger: createLogger({ name: 'test', level: 'silent' }),
    labels: {},
  });
}

/** A request saved by an earlier process at `createdAt`, and its CSR as the API holds it. */
function earlierRequest(createdAt: number, status: V1CertificateSigningRequest['status'] = {}) {
  const keys = generateKeyPair('ecdsa-p256');
  const store = new MemoryPendingStore();
  store.saved = {
    ...spec,
    keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    algorithm: 'ecdsa-p256',
    csrName: 'kcr-agent-a-earlier',
    createdAt,
  };
  const csr: V1CertificateSigningRequest = {
    metadata: { name: 'kcr-agent-a-earlier', uid: 'uid-0', resourceVersion: '1' },
    spec: {
      request: Buffer.from(buildCertificationRequest(spec.subject, keys)).toString('base64'),
      signerName: spec.signerName,
      usages: ['client auth'],
    },
    status,
  };
  return { store, csr };
}

const isTimeout = (error: unknown) => {
  assert.ok(error instanceof RotationError);
  assert.equal(error.result, 'timeout');
  assert.match(error.message, /^CSR kcr-agent-a-earlier was not decided within 600 s$/);
  assert.equal(error.requestFinished, true);
  return true;
};

describe('the CSR issuer', () => {
  const api = new FakeApi();
  let client: KubeClient;
  before(async () => {
    client = await api.start();
  });
  after(async () => {
    await client.close();
    await api.stop();
  });

  it(
    'gives up waiting at once when shutdown came before the wait began, keeping the pending key',
    { timeout: 10_000 },
    async () => {
      api.csr = undefined;
      const pending = new MemoryPendingStore();
      const shutdown = new AbortController();
      shutdown.abort();
      await assert.rejects(issuer(pending, 600_000).obtain(client, shutdown.signal), (error: unknown) => {
        assert.ok(error instanceof RotationError);
        assert.match(error.message, /^waiting for CSR .* was interrupted by shutdown$/);
        assert.equal(error.requestFinished, false);
        return true;
      });
      const created = api.stored() ?? assert.fail('the CSR was not created');
      assert.equal(pending.saved?.csrName, created.metadata?.name, 'the next start completes the same request');
    },
  );

  it(
    'an adopted request gets only what is left of its approval timeout, not a fresh one',
    { timeout: 10_000 },
    async () => {
      const { store, csr } = earlierRequest(NOW - 600_000 + 200);
      api.csr = csr;
      api.requests.length = 0;
      await assert.rejects(issuer(store, 600_000).obtain(client, new AbortController().signal), isTimeout);
      assert.deepEqual(api.requests.slice(0, 3), ['create', 'read', 'list'], 'adopted, not created anew');
    },
  );

  it(
    'an adopted request already out of time gets one look: undecided, it times out at once',
    { timeout: 10_000 },
    async () => {
      const { store, csr } = earlierRequest(NOW - 3_600_000);
      api.csr = csr;
      await assert.rejects(issuer(store, 600_000).obtain(client, new AbortController().signal), isTimeout);
    },
  );

  it(
    'an adopted request already out of time gets one look: issued meanwhile, its certificate is taken',
    { timeout: 10_000 },
    async () => {
      const { store, csr } = earlierRequest(NOW - 3_600_000, {
        conditions: [{ type: 'Approved', status: 'True', reason: 'Test', message: 'approved' }],
        certificate: Buffer.from('CERTIFICATE').toString('base64'),
      });
      const keyPem = store.saved?.keyPem;
      api.csr = csr;
      const issued = await issuer(store, 600_000).obtain(client, new AbortController().signal);
      assert.deepEqual(issued.credential, { certPem: 'CERTIFICATE', keyPem });
      assert.equal(issued.request, 'kcr-agent-a-earlier');
    },
  );

  // Issue 22: whoever may update a CSR's status could write a message of megabytes into our errors and logs.
  it('cuts a denial reason and message the approver wrote to a sane length', { timeout: 10_000 }, async () => {
    const { store, csr } = earlierRequest(NOW - 1_000, {
      conditions: [{ type: 'Denied', status: 'True', reason: 'R'.repeat(1_000), message: 'm'.repeat(1_000_000) }],
    });
    api.csr = csr;
    await assert.rejects(issuer(store, 600_000).obtain(client, new AbortController().signal), (error: unknown) => {
      assert.ok(error instanceof RotationError);
      assert.equal(error.result, 'denied');
      assert.ok(error.message.length < 1_300, `${String(error.message.length)} characters`);
      assert.match(
        error.message,
        /^CSR kcr-agent-a-earlier was denied: R{64}\.\.\. \(936 more characters cut\): m{1024}\.\.\./,
      );
      return true;
    });
  });
});
