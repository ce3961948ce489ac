// The API client against local TLS servers that misbehave on purpose (issue 22): endless bodies and watch lines,
// huge Status messages, bytes dripped slowly, response headers that never come, a network that goes silent.
// Every read is bounded in size and time, and the error names the bound. Virtual time (the manual clock)
// drives the client's deadlines and pings; the servers run in real time.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Http2ServerResponse } from 'node:http2';
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import type { ClientConfig } from '../../../../src/core/kubeconfig/client-config.ts';
import { describeError, kubeStatus } from '../../../../src/io/kube/errors.ts';
import { createKubeClient, restListWatchSource, type KubeClient } from '../../../../src/io/kube/rest.ts';
import { drip, hostileServer, type HostileHandler } from '../../../support/hostile-server.ts';
import { eventually } from '../../../support/kube.ts';
import { ManualClock } from '../../../support/manual-clock.ts';

const MiB = 1024 * 1024;
// rest.ts's limits, as docs/sidecar.md states them.
const MAX_RESPONSE_BYTES = 64 * MiB;
const MAX_WATCH_EVENT_BYTES = 16 * MiB;

const configFor = (port: number, caPem: string): ClientConfig => ({
  server: `https://127.0.0.1:${String(port)}`,
  certificateAuthority: { pem: caPem },
  insecureSkipTlsVerify: false,
  user: { token: { value: 'hostile-test' } },
});

/** Writes `total` bytes of `byte` in 1 MiB chunks, as fast as the client reads them, then ends (or stops). */
function stream(response: Http2ServerResponse, total: number, byte: string, end: string | undefined) {
  const chunk = Buffer.alloc(MiB, byte);
  let sent = 0;
  const more = () => {
    while (sent < total && !response.stream.destroyed) {
      sent += chunk.length;
      if (!response.write(chunk)) {
        response.once('drain', more);
        return;
      }
    }
    if (!response.stream.destroyed && end !== undefined) response.end(end);
  };
  more();
}

/** The highest external memory (Buffers) seen while `work` runs, above what it was before. */
async function peakBufferGrowth<T>(work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
  }, 5);
  try {
    return { result: await work(), peak };
  } finally {
    clearInterval(sampler);
  }
}

/** Polls in real time (the servers run in it) until `condition` holds, for at most 5 s. */
const waitFor = (condition: () => boolean, what: string) =>
  eventually(
    () => {
      assert.ok(condition(), what);
      return Promise.resolve();
    },
    { timeoutMs: 5_000, intervalMs: 10 },
  );

/** Starts a watch; `ended` resolves with what onDone got. */
function startWatch(client: KubeClient, path: string) {
  const events: unknown[] = [];
  let end!: (error: unknown) => void;
  const ended = new Promise<unknown>((resolve) => (end = resolve));
  const started = client.watch(
    path,
    { resourceVersion: '1' },
    (type, object) => events.push({ type, object }),
    (error) => {
      end(error ?? 'ended without an error');
    },
  );
  return { events, ended, started };
}

describe('the API client against a hostile server', () => {
  const clients: KubeClient[] = [];
  const servers: { stop(): Promise<void> }[] = [];
  after(async () => {
    for (const client of clients) await client.close();
    for (const server of servers) await server.stop();
  });
  async function setup(handler: HostileHandler) {
    const server = await hostileServer(handler);
    servers.push(server);
    const clock = new ManualClock();
    const client = createKubeClient(configFor(server.port, server.caPem), { clock });
    clients.push(client);
    return { server, clock, client };
  }

  it('refuses a 100 MiB body: memory stays bounded, the error names the limit, the connection is closed', async () => {
    const { server, client } = await setup((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      // Valid JSON, had it been read to the end.
      response.write('{"junk":"');
      stream(response, 100 * MiB, 'x', '"}');
    });
    const { result, peak } = await peakBufferGrowth(() =>
      client.request('GET', '/api/v1/secrets').then(
        () => 'read in full',
        (error: unknown) => error,
      ),
    );
    assert.ok(result instanceof Error, String(result));
    assert.match(result.message, /^GET \/api\/v1\/secrets: the response is larger than 64 MiB$/);
    assert.ok(peak < MAX_RESPONSE_BYTES + 48 * MiB, `buffers grew by ${String(Math.round(peak / MiB))} MiB`);
    await waitFor(() => server.closedConnections() === 1, 'the connection closed');
  });

  it('lists a collection whose page is too large in smaller pages', async () => {
    const limits: string[] = [];
    const { source } = await setup((_request, response, url) => {
      const limit = url.searchParams.get('limit') ?? '';
      limits.push(limit);
      response.writeHead(200, { 'content-type': 'application/json' });
      const items = Array.from({ length: Number(limit) }, (_, i) => ({ metadata: { name: `o${String(i)}` } }));
      if (Number(limit) > 100) stream(response, MAX_RESPONSE_BYTES + MiB, ' ', '');
      else response.end(JSON.stringify({ items, metadata: { resourceVersion: '7', continue: 'next' } }));
    }).then(({ client }) => ({ source: restListWatchSource(client, '/api/v1/secrets') }));
    const page = await source.list({ limit: 500 });
    assert.equal(page.items.length, 62);
    assert.deepEqual(limits, ['500', '250', '125', '62']);
    await source.list({ limit: 500, continue: 'next' });
    assert.equal(limits.at(-1), '62', 'the smaller page is kept');
  });

  it('refuses a watch line without an end: memory stays bounded, the error names the 16 MiB limit', async () => {
    const { server, client } = await setup((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { resourceVersion: '2' } } })}\n`);
      // 200 MiB and no newline, then the end (so that a client without a limit ends the test too).
      stream(response, 200 * MiB, 'x', '');
    });
    const { result, peak } = await peakBufferGrowth(async () => {
      const watch = startWatch(client, '/api/v1/secrets');
      await watch.started;
      return { error: await watch.ended, events: watch.events };
    });
    assert.equal(result.events.length, 1, 'the events before the endless one are delivered');
    assert.match(describeError(result.error), /^GET \/api\/v1\/secrets \(watch\): an event is larger than 16 MiB$/);
    assert.ok(peak < 3 * MAX_WATCH_EVENT_BYTES + 32 * MiB, `buffers grew by ${String(Math.round(peak / MiB))} MiB`);
    await waitFor(() => server.closedConnections() === 1, 'the connection closed');
  });

  it("cuts a server's Status message, and does not read an error body too large to be a Status", async () => {
    const { client } = await setup((_request, response, url) => {
      response.writeHead(403, { 'content-type': 'application/json' });
      if (url.pathname === '/huge-message')
        response.end(JSON.stringify({ kind: 'Status', reason: 'Forbidden', message: 'm'.repeat(60_000), code: 403 }));
      else stream(response, 10 * MiB, ' ', '{}');
    });
    const message = await client.request('GET', '/huge-message').catch((error: unknown) => error);
    assert.equal(kubeStatus(message)?.reason, 'Forbidden');
    const text = describeError(message);
    assert.ok(text.length < 1_200, `${String(text.length)} characters`);
    assert.match(text, /^HTTP 403 Forbidden: m{1024}\.\.\. \(58976 more characters cut\)$/);
    const body = await client.request('GET', '/huge-body').catch((error: unknown) => error);
    assert.equal(describeError(body), 'HTTP 403');
  });

  it('fails a request a server drips slowly once its 60 s deadline passes, naming the deadline', async () => {
    let dripping = 0;
    const { clock, client } = await setup((_request, response) => {
      drip(response, (sent) => (dripping = sent));
    });
    const outcome = client.request('GET', '/api/v1/secrets').then(
      () => 'answered',
      (error: unknown) => error,
    );
    await waitFor(() => dripping >= 3, 'the server is dripping');
    await clock.advance(59_999);
    assert.ok(dripping < 50);
    await clock.advance(1);
    const error = await outcome;
    assert.ok(dripping < 50, 'failed before the server ended');
    assert.match(describeError(error), /^GET \/api\/v1\/secrets: no complete answer within 60 s/);
  });

  it('gives up on a watch whose response headers do not come within 30 s', async () => {
    let asked = false;
    const { clock, client } = await setup((_request, response) => {
      asked = true;
      // Headers after 5 s of real time only, so that a client without a bound ends the test too.
      const timer = setTimeout(() => {
        response.writeHead(200).end();
      }, 5_000);
      response.stream.once('close', () => {
        clearTimeout(timer);
      });
    });
    const watch = startWatch(client, '/api/v1/secrets');
    const started = watch.started.then(
      () => 'started',
      (error: unknown) => error,
    );
    await waitFor(() => asked, 'the watch was asked for');
    await clock.advance(30_000);
    assert.match(describeError(await started), /^GET \/api\/v1\/secrets \(watch\): no response headers within 30 s/);
  });

  it('pings a connection nothing was read from for 30 s, and closes it when the ping goes unanswered for 15 s', async () => {
    const server = await hostileServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(`${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '2' } } })}\n`);
    });
    servers.push(server);
    // The network between them, which the test cuts without a reset (a cable pulled, a NAT entry expired).
    const proxy = await blackHoleProxy(server.port);
    servers.push(proxy);
    const clock = new ManualClock();
    const client = createKubeClient(configFor(proxy.port, server.caPem), { clock });
    clients.push(client);
    const watch = startWatch(client, '/api/v1/secrets');
    await watch.started;
    await waitFor(() => watch.events.length === 1, 'the first event');
    proxy.cut();
    let ended = false;
    void watch.ended.then(() => (ended = true));
    await clock.advance(30_000 + 15_000 - 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(!ended, 'not before the ping timed out');
    await clock.advance(1);
    await waitFor(() => ended, 'the watch ended');
    assert.match(describeError(await watch.ended), /did not answer a ping within 15000 ms/);
  });

  it('turns TCP keepalive on for its connections', async () => {
    const { server, client } = await setup((_request, response) => {
      response.writeHead(200).end('{}');
    });
    await client.request('GET', '/api');
    const sockets = execFileSync('ss', ['-tnoH', 'state', 'established', `( dport = :${String(server.port)} )`], {
      encoding: 'utf8',
    });
    assert.match(sockets, /timer:\(keepalive,/);
  });
});

/** A TCP forwarder to `port` that, once cut, passes nothing on either way and closes nothing. */
async function blackHoleProxy(port: number) {
  let cut = false;
  const sockets: Socket[] = [];
  const server = createTcpServer((inbound) => {
    const outbound = tcpConnect(port, '127.0.0.1');
    sockets.push(inbound, outbound);
    inbound.on('data', (data) => !cut && outbound.write(data));
    outbound.on('data', (data) => !cut && inbound.write(data));
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      cut = true;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
