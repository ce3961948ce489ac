// The API client's connections (src/io/kube/transport.ts) against local TLS servers: HTTP/2 when the server
// offers h2 in ALPN, every request and watch on one connection with the client certificate presented;
// HTTP/1.1 when it does not; new connections when the client certificate changes, the old one closing once
// its watch is done.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, describe, it } from 'node:test';
import type { ClientConfig } from '../../../../src/core/kubeconfig/client-config.ts';
import { createKubeClient } from '../../../../src/io/kube/rest.ts';
import { createCertificateAuthority, issueCertificate } from '../../../../scripts/testbed/pki.ts';
import { ManualClock } from '../../../support/manual-clock.ts';

const ca = createCertificateAuthority('transport-test-ca');
const serving = issueCertificate(ca, { commonName: 'apiserver', usage: 'server', ipAddresses: ['127.0.0.1'] });
const dir = mkdtempSync(join(tmpdir(), 'kcr-transport-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Seen {
  readonly path: string;
  readonly httpVersion: string;
  /** The client certificate's common name. */
  readonly client: string;
}

type Handler = (request: Http2ServerRequest, response: Http2ServerResponse) => void;

/** An apiserver stand-in: `h2` offers HTTP/2 and HTTP/1.1, else HTTP/1.1 only; watches stay open until ended. */
async function standIn(h2: boolean) {
  const seen: Seen[] = [];
  const watches: Http2ServerResponse[] = [];
  let sessions = 0;
  let closedSessions = 0;
  const handler: Handler = (request, response) => {
    const socket = (request.socket as TLSSocket | undefined) ?? (request.stream.session?.socket as TLSSocket);
    const url = new URL(request.url, 'https://stand-in');
    seen.push({
      path: url.pathname,
      httpVersion: request.httpVersion,
      client: String(socket.getPeerCertificate().subject.CN),
    });
    response.writeHead(200, { 'content-type': 'application/json' });
    if (url.searchParams.get('watch') === 'true') {
      response.write(
        `${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } })}\n`,
      );
      watches.push(response);
    } else response.end(JSON.stringify({ items: [], metadata: { resourceVersion: '1' }, path: url.pathname }));
  };
  const tls = { key: serving.key, cert: serving.cert, ca: ca.cert, requestCert: true, rejectUnauthorized: true };
  const server = h2
    ? createSecureServer({ ...tls, allowHTTP1: true }, handler)
    : createHttpsServer(tls, handler as unknown as Parameters<typeof createHttpsServer>[1]);
  if (h2) {
    server.on('session', (session: { once(event: 'close', listener: () => void): void }) => {
      sessions++;
      session.once('close', () => closedSessions++);
    });
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`,
    seen,
    get sessions() {
      return sessions;
    },
    closedSessions: () => closedSessions,
    endWatches() {
      for (const watch of watches.splice(0)) watch.end();
    },
    async stop() {
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function clientFiles(name: string) {
  const pair = issueCertificate(ca, { commonName: name, usage: 'client' });
  writeFileSync(join(dir, 'client.crt'), pair.cert);
  writeFileSync(join(dir, 'client.key'), pair.key);
}

const configFor = (server: string): ClientConfig => ({
  server,
  certificateAuthority: { pem: ca.cert },
  insecureSkipTlsVerify: false,
  user: { clientCertificate: { file: join(dir, 'client.crt') }, clientKey: { file: join(dir, 'client.key') } },
});

/** Opens a watch and resolves once its first event is in. */
function watchOnce(client: ReturnType<typeof createKubeClient>, path: string) {
  let ended!: () => void;
  const done = new Promise<void>((resolve) => (ended = resolve));
  return new Promise<{ done: Promise<void> }>((resolve, reject) => {
    client
      .watch(
        path,
        {},
        () => {
          resolve({ done });
        },
        () => {
          ended();
        },
      )
      .catch(reject);
  });
}

describe("the API client's connections", () => {
  it('speak HTTP/2 to a server offering h2: requests and a watch on one connection, with the client certificate', async () => {
    const server = await standIn(true);
    clientFiles('agent-1');
    const client = createKubeClient(configFor(server.url));
    try {
      const watch = await watchOnce(client, '/api/v1/secrets');
      await Promise.all([1, 2, 3].map((n) => client.request('GET', `/api/v1/namespaces/n${String(n)}`)));
      await client.request('POST', '/api/v1/namespaces', { body: { metadata: { name: 'x' } } });
      assert.equal(server.seen.length, 5);
      assert.deepEqual(new Set(server.seen.map((request) => request.httpVersion)), new Set(['2.0']));
      assert.deepEqual(new Set(server.seen.map((request) => request.client)), new Set(['agent-1']));
      assert.equal(server.sessions, 1, 'one connection for all of them');
      server.endWatches();
      await watch.done;
    } finally {
      await client.close();
      await server.stop();
    }
  });

  it('speak HTTP/1.1 to a server that does not offer h2', async () => {
    const server = await standIn(false);
    clientFiles('agent-1');
    const client = createKubeClient(configFor(server.url));
    try {
      await client.request('GET', '/api/v1/namespaces/a');
      await client.request('GET', '/api/v1/namespaces/b');
      assert.deepEqual(
        server.seen.map((request) => [request.httpVersion, request.client]),
        [
          ['1.1', 'agent-1'],
          ['1.1', 'agent-1'],
        ],
      );
    } finally {
      await client.close();
      await server.stop();
    }
  });

  it('open a new connection when the client certificate changes; the old one closes once its watch ends', async () => {
    const server = await standIn(true);
    clientFiles('agent-1');
    const clock = new ManualClock();
    const client = createKubeClient(configFor(server.url), { clock });
    try {
      const watch = await watchOnce(client, '/api/v1/secrets');
      clientFiles('agent-2');
      // Files are checked for changes once a second.
      await clock.advance(1_000);
      await client.request('GET', '/api/v1/namespaces/after');
      assert.deepEqual(
        server.seen.map((request) => request.client),
        ['agent-1', 'agent-2'],
      );
      assert.equal(server.sessions, 2);
      assert.equal(server.closedSessions(), 0, 'the old connection stays while its watch is open');
      server.endWatches();
      await watch.done;
      const deadline = Date.now() + 5_000;
      while (server.closedSessions() < 1 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal(server.closedSessions(), 1, 'the old connection closed once its watch ended');
      await client.request('GET', '/api/v1/namespaces/later');
      assert.equal(server.sessions, 2, 'the new connection is reused');
    } finally {
      await client.close();
      await server.stop();
    }
  });
});
