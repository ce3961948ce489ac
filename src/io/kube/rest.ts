// The sidecar's Kubernetes API client: JSON requests and watches over node:https, with the credentials of
// credentials.ts. The sidecar makes a few kinds of calls (CSRs, Secrets, Events, TokenRequests, a workload
// patch), and @kubernetes/client-node costs about 60 MiB of RSS merely imported (bench/sidecar.ts): over half
// the sidecar's budget. node:https measured 17 MiB smaller than undici imported alone, so it is used here.
// Connections are pooled per TLS identity (CA, client certificate and key): when the files rotate, new
// requests get a new pool and the old one is closed once its requests are done.
import { createHash } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { ClientConfig } from '../../core/kubeconfig/client-config.ts';
import { kubeCredentials, type Authentication, type CredentialOptions, type Credentials } from './credentials.ts';
import { KubeApiError, statusOf } from './errors.ts';
import { listPage, watchQuery, type ListWatchSource, type WatchEventType } from './informer.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export const MERGE_PATCH = 'application/merge-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';

export interface RequestParameters {
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly body?: unknown;
  /** application/json unless a patch type is given. */
  readonly contentType?: string;
  readonly signal?: AbortSignal;
}

export interface WatchHandle {
  abort(): void;
}

export interface KubeClient {
  /** The cluster and credential this client was made for. */
  readonly config: ClientConfig;
  /** One JSON request; the parsed body, or a KubeApiError for any status other than 2xx. */
  request<T>(method: Method, path: string, parameters?: RequestParameters): Promise<T>;
  /** A watch on a collection (newline-delimited JSON events); see ListWatchSource.watch. */
  watch(
    path: string,
    query: RequestParameters['query'],
    onEvent: (type: WatchEventType, object: unknown) => void,
    onDone: (error?: unknown) => void,
  ): Promise<WatchHandle>;
  /** Closes the pooled connections (at shutdown, or when the client is no longer used). */
  close(): Promise<void>;
}

// What the apiserver's audit log shows.
const USER_AGENT = 'kubeconfig-rotator-sidecar';
// A hung connection must not hold a rotation (and shutdown) for long.
const REQUEST_TIMEOUT_MS = 30_000;

interface Pool {
  readonly identity: string;
  readonly agent: HttpAgent;
  active: number;
  retired: boolean;
}

export interface KubeClientOptions extends CredentialOptions {
  /** Overrides the credentials the config describes (e.g. a fixed token for one check). */
  readonly credentials?: Credentials;
}

export function createKubeClient(config: ClientConfig, options: KubeClientOptions = {}): KubeClient {
  const credentials = options.credentials ?? kubeCredentials(config, options);
  const server = new URL(config.server);
  const basePath = server.pathname.replace(/\/+$/, '');
  const plain = server.protocol === 'http:';
  const request = plain ? httpRequest : httpsRequest;
  let pool: Pool | undefined;
  const retired = new Set<Pool>();
  let closed = false;

  function poolFor(auth: Authentication): Pool {
    const identity = createHash('sha256')
      .update([auth.caPem ?? '', auth.certPem ?? '', auth.keyPem ?? ''].join('\u0000'))
      .digest('hex');
    if (pool?.identity === identity) return pool;
    if (pool !== undefined) retire(pool);
    pool = {
      identity,
      active: 0,
      retired: false,
      agent: plain
        ? new HttpAgent({ keepAlive: true })
        : new Agent({
            keepAlive: true,
            ...(auth.caPem === undefined ? {} : { ca: auth.caPem }),
            ...(auth.certPem === undefined ? {} : { cert: auth.certPem, key: auth.keyPem }),
            rejectUnauthorized: !config.insecureSkipTlsVerify,
            ...(config.tlsServerName === undefined ? {} : { servername: config.tlsServerName }),
          }),
    };
    return pool;
  }

  function retire(old: Pool): void {
    old.retired = true;
    if (old.active === 0) old.agent.destroy();
    else retired.add(old);
  }

  function release(used: Pool): void {
    used.active--;
    if (used.retired && used.active === 0) {
      retired.delete(used);
      used.agent.destroy();
    }
  }

  /** Sends one request; resolves with the response once its headers are in. */
  async function open(method: Method, path: string, parameters: RequestParameters, timeoutMs: number) {
    if (closed) throw new Error('the Kubernetes client is closed');
    const auth = await credentials.current();
    const used = poolFor(auth);
    const url = new URL(`${basePath}${path}`, server);
    for (const [name, value] of Object.entries(parameters.query ?? {}))
      if (value !== undefined) url.searchParams.set(name, String(value));
    const body = parameters.body === undefined ? undefined : JSON.stringify(parameters.body);
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': USER_AGENT };
    if (auth.token !== undefined) headers.authorization = `Bearer ${auth.token}`;
    if (body !== undefined) {
      headers['content-type'] = parameters.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const requestOptions: RequestOptions = {
      method,
      agent: used.agent,
      headers,
      timeout: timeoutMs,
      ...(parameters.signal === undefined ? {} : { signal: parameters.signal }),
    };
    used.active++;
    return new Promise<{ response: IncomingMessage; done: () => void }>((resolve, reject) => {
      let released = false;
      const done = () => {
        if (released) return;
        released = true;
        release(used);
      };
      const outgoing = request(url, requestOptions, (response) => {
        response.once('close', done);
        resolve({ response, done });
      });
      outgoing.once('timeout', () => outgoing.destroy(new Error(`${method} ${path} timed out`)));
      outgoing.once('error', (error) => {
        done();
        reject(new Error(`${method} ${path} failed: ${error.message}`, { cause: error }));
      });
      outgoing.end(body);
    });
  }

  async function readBody(response: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Opens, and once more with fresh credentials when the API refuses renewable ones (401). */
  async function openAuthorized(method: Method, path: string, parameters: RequestParameters, timeoutMs: number) {
    const first = await open(method, path, parameters, timeoutMs);
    if (first.response.statusCode !== 401 || !credentials.refused()) return first;
    first.response.resume();
    return open(method, path, parameters, timeoutMs);
  }

  async function failure(method: Method, path: string, response: IncomingMessage): Promise<KubeApiError> {
    const text = await readBody(response);
    // The body is an API Status (reason, message); response headers are not kept.
    return new KubeApiError(`${method} ${path}`, statusOf(response.statusCode ?? 0, text));
  }

  return {
    config,
    async request<T>(method: Method, path: string, parameters: RequestParameters = {}): Promise<T> {
      const { response } = await openAuthorized(method, path, parameters, REQUEST_TIMEOUT_MS);
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) throw await failure(method, path, response);
      const text = await readBody(response);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    },
    async watch(path, query, onEvent, onDone) {
      const aborter = new AbortController();
      // The informer's watchdog, not a socket timeout, notices a silent watch.
      const { response, done } = await openAuthorized(
        'GET',
        path,
        { query: { ...query, watch: true }, signal: aborter.signal },
        0,
      );
      let ended = false;
      const end = (error?: unknown) => {
        if (ended) return;
        ended = true;
        done();
        onDone(error);
      };
      if (response.statusCode !== 200) {
        const error = await failure('GET', path, response);
        queueMicrotask(() => {
          end(error);
        });
        return {
          abort: () => {
            aborter.abort();
          },
        };
      }
      consumeEvents(response, onEvent).then(
        () => {
          end();
        },
        (error: unknown) => {
          end(aborter.signal.aborted ? undefined : error);
        },
      );
      return {
        abort: () => {
          aborter.abort();
        },
      };
    },
    close() {
      closed = true;
      for (const old of retired) old.agent.destroy();
      retired.clear();
      pool?.agent.destroy();
      pool = undefined;
      return Promise.resolve();
    },
  };
}

async function consumeEvents(
  response: IncomingMessage,
  onEvent: (type: WatchEventType, object: unknown) => void,
): Promise<void> {
  response.setEncoding('utf8');
  let buffered = '';
  for await (const chunk of response) {
    buffered += chunk as string;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line === '') continue;
      const event = JSON.parse(line) as { type: WatchEventType; object: unknown };
      onEvent(event.type, event.object);
    }
  }
}

/** A list+watch source on a collection path, e.g. /apis/certificates.k8s.io/v1/certificatesigningrequests. */
export function restListWatchSource<T>(
  client: KubeClient,
  path: string,
  options: { readonly fieldSelector?: string; readonly random?: () => number } = {},
): ListWatchSource<T> {
  const random = options.random ?? Math.random;
  return {
    async list({ limit, continue: token }) {
      const page = await client.request<{
        items: T[];
        metadata?: { resourceVersion?: string; continue?: string };
      }>('GET', path, { query: { limit, fieldSelector: options.fieldSelector, continue: token } });
      return listPage(page.items, page.metadata?.resourceVersion, page.metadata?.continue);
    },
    watch(resourceVersion, onEvent, onDone) {
      return client.watch(path, watchQuery(resourceVersion, random, options.fieldSelector), onEvent, onDone);
    },
  };
}
