// A check call that runs out of time is cancelled, not abandoned: bounded() aborts the signal it handed the
// call, and client-node's request, given that signal through abortable(), closes its connection.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { KubeConfig, VersionApi } from '@kubernetes/client-node';
import { abortable } from '../../../src/check/abortable.ts';
import { bounded, TimeoutError } from '../../../src/check/bounded.ts';

// A server that takes requests and never answers them.
const requests: IncomingMessage[] = [];
const server = createServer((request) => {
  requests.push(request);
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
after(() => {
  server.closeAllConnections();
  server.close();
});

function silentCluster(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      { name: 'c', server: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`, skipTLSVerify: true },
    ],
    users: [{ name: 'u', token: 'a-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kubeConfig;
}

describe('bounded', () => {
  it('fails at its bound and aborts the signal it gave the call', async () => {
    let given: AbortSignal | undefined;
    await assert.rejects(
      bounded(
        'a call',
        (signal) => {
          given = signal;
          return new Promise(() => undefined);
        },
        50,
      ),
      (error: unknown) => error instanceof TimeoutError && /a call: no answer within 0\.05 s/.test(error.message),
    );
    assert.equal(given?.aborted, true);
  });

  it("closes a client-node request's connection at the bound, keeping the client's own authentication", async () => {
    const started = Date.now();
    await assert.rejects(
      bounded('/version', (signal) => silentCluster().makeApiClient(VersionApi).getCode({}, abortable(signal)), 300),
      TimeoutError,
    );
    assert.ok(Date.now() - started < 2_000);
    const [request] = requests;
    assert.ok(request !== undefined, 'the request reached the server');
    assert.equal(request.headers.authorization, 'Bearer a-token');
    // The server sees the connection closed: the request was cancelled, not left running.
    const { socket } = request;
    const closed = socket.destroyed
      ? true
      : await Promise.race([
          new Promise<boolean>((resolve) => {
            socket.once('close', () => {
              resolve(true);
            });
          }),
          sleep(2_000, false),
        ]);
    assert.ok(closed, 'the connection is still open 2 s after the bound');
  });
});
