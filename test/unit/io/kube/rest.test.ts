// The sidecar's API client against a fake apiserver (plain HTTP, nothing secret): JSON requests with their
// content types, errors as the one classification (errors.ts) reads them, watches, and credentials resolved
// per request: a tokenFile re-read after a minute, an exec plugin cached until its expiry and run again on 401.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClientConfig, UserConfig } from '../../../../src/core/kubeconfig/client-config.ts';
import { kubeCredentials } from '../../../../src/io/kube/credentials.ts';
import { describeError, httpStatus, kubeStatus } from '../../../../src/io/kube/errors.ts';
import { createKubeClient, MERGE_PATCH, restListWatchSource } from '../../../../src/io/kube/rest.ts';
import { ManualClock } from '../../../support/manual-clock.ts';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
  readonly contentType: string | undefined;
  readonly userAgent: string | undefined;
  readonly body: string;
}

class FakeApiserver {
  readonly seen: Seen[] = [];
  /** Bearer tokens it accepts; empty: any. */
  accepted = new Set<string>();
  readonly #server = createServer((request, response) => {
    void this.#answer(request, response);
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${String((this.#server.address() as AddressInfo).port)}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  async #answer(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of request) body += String(chunk);
    const authorization = request.headers.authorization;
    this.seen.push({
      method: request.method ?? '',
      url: request.url ?? '',
      authorization,
      contentType: request.headers['content-type'],
      userAgent: request.headers['user-agent'],
      body,
    });
    const send = (status: number, value: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    };
    if (this.accepted.size > 0 && !this.accepted.has(authorization?.replace(/^Bearer /, '') ?? '')) {
      send(401, { kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
      return;
    }
    const url = new URL(request.url ?? '/', 'http://fake');
    if (url.pathname === '/api/v1/namespaces/ns/secrets/missing') {
      send(404, { kind: 'Status', reason: 'NotFound', message: 'secrets "missing" not found', code: 404 });
    } else if (url.pathname === '/api/v1/namespaces/ns/secrets' && url.searchParams.get('watch') === 'true') {
      response.writeHead(200, { 'content-type': 'application/json' });
      // Two events, the second split across writes, then the server ends the watch.
      response.write(
        `${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '2' } } })}\n{"type":"DELE`,
      );
      setTimeout(() => response.end(`TED","object":{"metadata":{"name":"a","resourceVersion":"3"}}}\n`), 20);
    } else if (url.pathname === '/api/v1/namespaces/ns/secrets') {
      send(200, { items: [{ metadata: { name: 'a', resourceVersion: '1' } }], metadata: { resourceVersion: '1' } });
    } else send(200, { kind: 'Thing', method: request.method });
  }
}

describe('the sidecar API client', () => {
  const fake = new FakeApiserver();
  let server = '';
  const dir = mkdtempSync(join(tmpdir(), 'rest-'));
  const configWith = (user: UserConfig): ClientConfig => ({ server, insecureSkipTlsVerify: false, user });
  before(async () => {
    server = await fake.start();
  });
  after(async () => {
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends JSON with the bearer token and the patch content type asked for', async () => {
    const client = createKubeClient(configWith({ token: { value: 'inline' } }));
    try {
      fake.seen.length = 0;
      assert.deepEqual(await client.request('PATCH', '/apis/apps/v1/x', { body: { a: 1 }, contentType: MERGE_PATCH }), {
        kind: 'Thing',
        method: 'PATCH',
      });
      await client.request('POST', '/api/v1/y', { body: { b: 2 }, query: { dryRun: 'All', skipped: undefined } });
      await client.request('DELETE', '/api/v1/z');
      assert.deepEqual(
        fake.seen.map(({ method, url, authorization, contentType, body }) => [
          method,
          url,
          authorization,
          contentType,
          body,
        ]),
        [
          ['PATCH', '/apis/apps/v1/x', 'Bearer inline', MERGE_PATCH, '{"a":1}'],
          ['POST', '/api/v1/y?dryRun=All', 'Bearer inline', 'application/json', '{"b":2}'],
          ['DELETE', '/api/v1/z', 'Bearer inline', undefined, ''],
        ],
      );
    } finally {
      await client.close();
    }
  });

  it('sends nothing, request or watch, before its limiter lets it, and the user agent it is given', async () => {
    const waiting: (() => void)[] = [];
    const limiter = {
      acquire: () => new Promise<void>((resolve) => waiting.push(resolve)),
      get waiting() {
        return waiting.length;
      },
    };
    const client = createKubeClient(configWith({}), { limiter, userAgent: 'kubeconfig-rotator-approver' });
    try {
      fake.seen.length = 0;
      const answered = client.request('GET', '/api/v1/namespaces/a');
      const watched = new Promise<void>((resolve, reject) => {
        client
          .watch(
            '/api/v1/namespaces/ns/secrets',
            {},
            () => undefined,
            () => {
              resolve();
            },
          )
          .catch(reject);
      });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(fake.seen.length, 0, 'nothing sent while the limiter holds both');
      assert.equal(waiting.length, 2);
      for (const release of waiting.splice(0)) release();
      await Promise.all([answered, watched]);
      assert.deepEqual(fake.seen.map(({ url }) => url.split('?')[0]).sort(), [
        '/api/v1/namespaces/a',
        '/api/v1/namespaces/ns/secrets',
      ]);
      assert.deepEqual(new Set(fake.seen.map(({ userAgent }) => userAgent)), new Set(['kubeconfig-rotator-approver']));
    } finally {
      await client.close();
    }
  });

  it('fails with the HTTP status and the Status message, as errors.ts classifies them', async () => {
    const client = createKubeClient(configWith({}));
    try {
      const error = await client
        .request('GET', '/api/v1/namespaces/ns/secrets/missing')
        .catch((caught: unknown) => caught);
      assert.equal(httpStatus(error), 404);
      assert.equal(kubeStatus(error)?.reason, 'NotFound');
      assert.equal(
        describeError(new Error('reading failed', { cause: error })),
        'reading failed: HTTP 404 NotFound: secrets "missing" not found',
      );
    } finally {
      await client.close();
    }
  });

  it('lists and watches a collection as an informer source', async () => {
    const client = createKubeClient(configWith({}));
    try {
      const source = restListWatchSource(client, '/api/v1/namespaces/ns/secrets', { fieldSelector: 'metadata.name=a' });
      const page = await source.list({ limit: 10 });
      assert.deepEqual(page, { items: [{ metadata: { name: 'a', resourceVersion: '1' } }], resourceVersion: '1' });
      const events: string[] = [];
      const done = new Promise<unknown>((resolve) => {
        void source.watch('1', (type, object) => events.push(`${type} ${JSON.stringify(object)}`), resolve);
      });
      assert.equal(await done, undefined);
      assert.deepEqual(events, [
        'ADDED {"metadata":{"name":"a","resourceVersion":"2"}}',
        'DELETED {"metadata":{"name":"a","resourceVersion":"3"}}',
      ]);
      const watched = new URL(fake.seen.at(-1)?.url ?? '', 'http://fake').searchParams;
      assert.equal(watched.get('fieldSelector'), 'metadata.name=a');
      assert.equal(watched.get('resourceVersion'), '1');
      assert.equal(watched.get('allowWatchBookmarks'), 'true');
    } finally {
      await client.close();
    }
  });

  it('reads a tokenFile again after a minute, and at once when the API refuses the one it has', async () => {
    const clock = new ManualClock();
    const file = join(dir, 'token');
    writeFileSync(file, 'first\n');
    const client = createKubeClient(configWith({ token: { file } }), { clock });
    try {
      fake.seen.length = 0;
      await client.request('GET', '/x');
      writeFileSync(file, 'second\n');
      await client.request('GET', '/x');
      await clock.advance(60_000);
      await client.request('GET', '/x');
      writeFileSync(file, 'third\n');
      fake.accepted = new Set(['third']);
      await client.request('GET', '/x');
      assert.deepEqual(
        fake.seen.map((seen) => seen.authorization),
        ['Bearer first', 'Bearer first', 'Bearer second', 'Bearer second', 'Bearer third'],
      );
    } finally {
      fake.accepted = new Set();
      await client.close();
    }
  });

  it('runs an exec plugin once until its credential expires, and again when the API refuses it', async () => {
    const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));
    const counter = join(dir, 'runs');
    writeFileSync(counter, '');
    const plugin = join(dir, 'plugin.sh');
    // Each run prints token-N (N counts runs) valid for 10 minutes of the manual clock.
    writeFileSync(
      plugin,
      `#!/bin/sh
echo x >> "${counter}"
n=$(wc -l < "${counter}" | tr -d ' ')
test "$KUBERNETES_EXEC_INFO" != "" || exit 3
printf '{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"token-%s","expirationTimestamp":"2026-01-01T00:10:00Z"}}' "$n"
`,
    );
    chmodSync(plugin, 0o755);
    const config = configWith({
      exec: {
        apiVersion: 'client.authentication.k8s.io/v1beta1',
        command: plugin,
        args: [],
        env: [],
        provideClusterInfo: false,
      },
    });
    const client = createKubeClient(config, { clock });
    try {
      fake.seen.length = 0;
      await Promise.all([client.request('GET', '/x'), client.request('GET', '/x')]);
      await client.request('GET', '/x');
      fake.accepted = new Set(['token-2']);
      await client.request('GET', '/x');
      await clock.advance(10 * 60_000);
      fake.accepted = new Set();
      await client.request('GET', '/x');
      assert.deepEqual(
        fake.seen.map((seen) => seen.authorization),
        ['Bearer token-1', 'Bearer token-1', 'Bearer token-1', 'Bearer token-1', 'Bearer token-2', 'Bearer token-3'],
      );
    } finally {
      fake.accepted = new Set();
      await client.close();
    }
  });

  it('says which plugin failed and how, never what it printed', async () => {
    const plugin = join(dir, 'failing.sh');
    writeFileSync(plugin, '#!/bin/sh\necho secret-token\necho secret-detail >&2\nexit 7\n');
    chmodSync(plugin, 0o755);
    const credentials = kubeCredentials(
      configWith({
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1',
          command: plugin,
          args: [],
          env: [],
          provideClusterInfo: false,
        },
      }),
    );
    const error = await credentials.current().catch((caught: unknown) => caught);
    const text = describeError(error);
    assert.match(text, /exec plugin .*failing\.sh failed \(exit code 7\)/);
    assert.ok(!text.includes('secret'), text);
  });

  const pluginCredentials = (name: string, script: string) => {
    const plugin = join(dir, name);
    writeFileSync(plugin, `#!/bin/sh\n${script}\n`);
    chmodSync(plugin, 0o755);
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, args: [], env: [] };
    return kubeCredentials(configWith({ exec: { ...exec, provideClusterInfo: false } }));
  };

  // Issue 22: a plugin that read its stdin waited for it for the whole 60 s exec timeout.
  it('gives a non-interactive plugin an empty, closed stdin, as client-go does', async () => {
    const credentials = pluginCredentials(
      'reads-stdin.sh',
      `cat > /dev/null\nprintf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t"}}'`,
    );
    const started = performance.now();
    const bound = AbortSignal.timeout(10_000);
    const outcome = await Promise.race([
      credentials.current(),
      new Promise((resolve) => {
        bound.addEventListener('abort', () => {
          resolve('still waiting after 10 s');
        });
      }),
    ]);
    assert.deepEqual(outcome, { token: 't' });
    assert.ok(performance.now() - started < 5_000);
  });

  it('never quotes what a plugin printed when it is not an ExecCredential, cause included', async () => {
    for (const printed of ['secret-token-1234', '{"kind":"ExecCredential","secret-token":']) {
      const credentials = pluginCredentials('prints-junk.sh', `printf '%s' '${printed}'`);
      const text = describeError(await credentials.current().catch((caught: unknown) => caught));
      assert.match(text, /printed something other than JSON/);
      assert.ok(!text.includes('secret'), text);
    }
  });
});
