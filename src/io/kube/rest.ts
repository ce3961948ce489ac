// The Kubernetes API client of the in-cluster programs (sidecar, approver, injector): JSON requests and watches,
// with the credentials of credentials.ts, on the connections of transport.ts (HTTP/2 where the apiserver offers
// it). The few kinds of calls these make (CSRs, Secrets, Events, Leases, SubjectAccessReviews, TokenRequests, a
// workload patch, a webhook configuration's caBundle) do not need @kubernetes/client-node, which costs about
// 60 MiB of RSS merely imported (bench/sidecar.ts); the operator's commands, run from a person's machine, use it.
// Connections are kept per TLS identity (CA, client certificate and key): when the files rotate, new requests
// get new connections and the old ones close once their requests and watches are done.
import type { Readable } from 'node:stream';
import type { ClientConfig } from '../../core/kubeconfig/client-config.ts';
import { systemClock, type Clock } from '../clock.ts';
import { kubeCredentials, type Authentication, type CredentialOptions, type Credentials } from './credentials.ts';
import { KubeApiError, statusOf } from './errors.ts';
import { listPage, watchQuery, type ListWatchSource, type Selectors, type WatchEventType } from './informer.ts';
import type { RateLimiter } from './rate-limit.ts';
import { connections, type Connections, type Exchange } from './transport.ts';

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
  /** The body as text, not parsed (/readyz answers `ok`). */
  readonly text?: boolean;
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
    signal?: AbortSignal,
  ): Promise<WatchHandle>;
  /** Closes the pooled connections (at shutdown, or when the client is no longer used). */
  close(): Promise<void>;
}

// A hung connection must not hold a rotation, a decision (and shutdown) for long: a request may stay silent this
// long (the connection is then pinged, transport.ts)...
const REQUEST_IDLE_TIMEOUT_MS = 30_000;
// ...and must be answered in full within this, however slowly a peer drips bytes (a list page of 500 objects
// takes well under a second from a healthy apiserver).
export const REQUEST_DEADLINE_MS = 60_000;
// A watch's response headers must come within this; the events after them are the informer's watchdog's.
export const WATCH_START_TIMEOUT_MS = 30_000;
// The largest response body read: a list page of 500 objects, or one object (etcd stores at most 1.5 MiB). A
// page of larger objects is asked for again in smaller pages (restListWatchSource), so the limit caps memory,
// not what can be read. client-go reads list bodies unbounded; its watch frames are bounded as below.
export const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
// One watch event (one line of the stream): client-go's streaming decoder's frame limit.
export const MAX_WATCH_EVENT_BYTES = 16 * 1024 * 1024;
// An error's body is a Status of a few hundred bytes: more is not read.
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** A response over one of the limits above; the connection it came on is closed. */
export class ResponseTooLargeError extends Error {}

export interface KubeClientOptions extends CredentialOptions {
  /** Overrides the credentials the config describes (e.g. a fixed token for one check). */
  readonly credentials?: Credentials;
  /** Every request and watch waits for it first (the approver's client-side rate limits). */
  readonly limiter?: RateLimiter;
  /** What the apiserver's audit log shows as the client. */
  readonly userAgent?: string;
  /** Times the request deadline, a watch's start and a connection's idle pings (the system clock unless given). */
  readonly clock?: Clock;
}

export function createKubeClient(config: ClientConfig, options: KubeClientOptions = {}): KubeClient {
  const credentials = options.credentials ?? kubeCredentials(config, options);
  const clock = options.clock ?? systemClock;
  const server = new URL(config.server);
  const basePath = server.pathname.replace(/\/+$/, '');
  // The connections of the current TLS identity (CA, client certificate and key).
  let pool:
    | {
        readonly caPem: string | undefined;
        readonly certPem: string | undefined;
        readonly keyPem: string | undefined;
        readonly connections: Connections;
      }
    | undefined;
  // Earlier identities' connections, closing once their requests are done.
  let retired: Connections[] = [];
  let closed = false;

  function connectionsFor(auth: Authentication): Connections {
    const { caPem, certPem, keyPem } = auth;
    // The credentials hand back the same strings until a file changes: compared, not hashed, per request.
    if (pool !== undefined && pool.caPem === caPem && pool.certPem === certPem && pool.keyPem === keyPem)
      return pool.connections;
    if (pool !== undefined) {
      pool.connections.retire();
      retired = [...retired.filter((old) => !old.closed), pool.connections];
    }
    pool = {
      caPem,
      certPem,
      keyPem,
      connections: connections(
        server,
        {
          ...(caPem === undefined ? {} : { caPem }),
          ...(certPem === undefined || keyPem === undefined ? {} : { certPem, keyPem }),
          rejectUnauthorized: !config.insecureSkipTlsVerify,
          ...(config.tlsServerName === undefined ? {} : { servername: config.tlsServerName }),
        },
        clock,
      ),
    };
    return pool.connections;
  }

  /** Sends one request; resolves with the response once its headers are in. */
  async function open(method: Method, path: string, parameters: RequestParameters, timeoutMs: number) {
    if (closed) throw new Error('the Kubernetes client is closed');
    const auth = await credentials.current();
    const url = new URL(`${basePath}${path}`, server);
    for (const [name, value] of Object.entries(parameters.query ?? {}))
      if (value !== undefined) url.searchParams.set(name, String(value));
    const body = parameters.body === undefined ? undefined : JSON.stringify(parameters.body);
    const headers: Record<string, string> = {
      accept: 'application/json',
      'user-agent': options.userAgent ?? 'kubeconfig-rotator-sidecar',
    };
    if (auth.token !== undefined) headers.authorization = `Bearer ${auth.token}`;
    if (body !== undefined) {
      headers['content-type'] = parameters.contentType ?? 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return connectionsFor(auth).send({
      method,
      url,
      headers,
      ...(body === undefined ? {} : { body }),
      timeoutMs,
      ...(parameters.signal === undefined ? {} : { signal: parameters.signal }),
      what: `${method} ${path}`,
    });
  }

  /** The whole body, or a ResponseTooLargeError (and the connection closed) past `limit` bytes. */
  async function readBody(response: Exchange, limit: number, what: string): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    await drain(response.body, (chunk) => {
      size += chunk.length;
      if (size > limit) throw tooLarge(response, `${what}: the response is larger than ${mebibytes(limit)}`);
      chunks.push(chunk as Buffer);
    });
    return Buffer.concat(chunks).toString('utf8');
  }

  /**
   * Runs `use` with a signal that aborts at the caller's signal or after `ms` on the clock; a failure after
   * the time ran out says so, naming the bound.
   */
  async function within<T>(
    ms: number,
    parameters: RequestParameters,
    failure: string,
    use: (signal: AbortSignal, done: () => void) => Promise<T>,
  ): Promise<T> {
    const finished = new AbortController();
    const timedOut = new AbortController();
    void clock.sleep(ms, finished.signal).then(() => {
      if (!finished.signal.aborted) timedOut.abort();
    });
    const signal =
      parameters.signal === undefined ? timedOut.signal : AbortSignal.any([parameters.signal, timedOut.signal]);
    try {
      return await use(signal, () => {
        finished.abort();
      });
    } catch (error) {
      if (!timedOut.signal.aborted) throw error;
      throw new Error(`${failure} within ${String(ms / 1000)} s`, { cause: error });
    } finally {
      finished.abort();
    }
  }

  /** Opens, and once more with fresh credentials when the API refuses renewable ones (401). */
  async function openAuthorized(method: Method, path: string, parameters: RequestParameters, timeoutMs: number) {
    const first = await open(method, path, parameters, timeoutMs);
    if (first.status !== 401 || !credentials.refused()) return first;
    first.body.resume();
    return open(method, path, parameters, timeoutMs);
  }

  async function failure(method: Method, path: string, response: Exchange): Promise<KubeApiError> {
    const what = `${method} ${path}`;
    // The body is an API Status (reason, message); response headers are not kept. One too large to be a Status
    // is not read: the status code alone is reported.
    const text = await readBody(response, MAX_ERROR_BODY_BYTES, what).catch((error: unknown) => {
      if (error instanceof ResponseTooLargeError) return '';
      throw error;
    });
    return new KubeApiError(what, statusOf(response.status, text));
  }

  return {
    config,
    async request<T>(method: Method, path: string, parameters: RequestParameters = {}): Promise<T> {
      // The deadline starts once the limiter lets the request go: a queue of decisions is not a slow server.
      await options.limiter?.acquire();
      return within(REQUEST_DEADLINE_MS, parameters, `${method} ${path}: no complete answer`, async (signal) => {
        const response = await openAuthorized(method, path, { ...parameters, signal }, REQUEST_IDLE_TIMEOUT_MS);
        if (response.status < 200 || response.status > 299) throw await failure(method, path, response);
        const text = await readBody(response, MAX_RESPONSE_BYTES, `${method} ${path}`);
        if (parameters.text === true) return text as T;
        return (text === '' ? undefined : JSON.parse(text)) as T;
      });
    },
    async watch(path, query, onEvent, onDone, signal) {
      const aborter = new AbortController();
      // Giving up on the start aborts it; once started, the handle stops the watch.
      const stopStart = () => {
        aborter.abort();
      };
      signal?.addEventListener('abort', stopStart, { once: true });
      await options.limiter?.acquire();
      // Bounded until the response headers (and an error's Status) are in; after them, the informer's watchdog,
      // not a socket timeout, notices a silent watch.
      const { response, refused } = await within(
        WATCH_START_TIMEOUT_MS,
        { signal: aborter.signal },
        `GET ${path} (watch): no response headers`,
        async (signal, started) => {
          const opened = await openAuthorized('GET', path, { query: { ...query, watch: true }, signal }, 0);
          const error = opened.status === 200 ? undefined : await failure('GET', path, opened);
          started();
          return { response: opened, refused: error };
        },
      ).finally(() => signal?.removeEventListener('abort', stopStart));
      let ended = false;
      const end = (error?: unknown) => {
        if (ended) return;
        ended = true;
        onDone(error);
      };
      if (refused !== undefined) {
        queueMicrotask(() => {
          end(refused);
        });
        return {
          abort: () => {
            aborter.abort();
          },
        };
      }
      consumeEvents(response, `GET ${path} (watch)`, onEvent).then(
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
      for (const old of retired) old.destroy();
      retired = [];
      pool?.connections.destroy();
      pool = undefined;
      return Promise.resolve();
    },
  };
}

/**
 * Feeds each chunk of a response body to `onChunk`; resolves at its end, rejects on an error (one thrown by
 * `onChunk` included) or a close before the end. Not an async iterator: on an HTTP/2 stream that the server
 * has already closed (the whole response in, a small one often arrives with its end) the iterator fails with
 * ERR_STREAM_PREMATURE_CLOSE before reading what is buffered; the 'end' event still comes.
 */
function drain(body: Readable, onChunk: (chunk: Buffer | string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let ended = false;
    body.on('data', (chunk: Buffer | string) => {
      if (body.destroyed) return;
      try {
        onChunk(chunk);
      } catch (error) {
        const failed = error instanceof Error ? error : new Error(String(error));
        // This error, not the one the stream reports for its destruction, is the reason.
        reject(failed);
        body.destroy(failed);
      }
    });
    body.once('end', () => {
      ended = true;
      resolve();
    });
    body.once('error', reject);
    body.once('close', () => {
      if (!ended) reject(new Error('the response was cut off before its end'));
    });
    body.resume();
  });
}

const mebibytes = (bytes: number) => `${String(bytes / 1024 / 1024)} MiB`;

/** The error for a response over a limit; the connection it came on is closed, so nothing more is read. */
function tooLarge(response: Exchange, message: string): ResponseTooLargeError {
  const error = new ResponseTooLargeError(message);
  response.drop(error);
  return error;
}

/** Newline-delimited events; a line longer than MAX_WATCH_EVENT_BYTES fails the watch and closes its connection. */
async function consumeEvents(
  response: Exchange,
  what: string,
  onEvent: (type: WatchEventType, object: unknown) => void,
): Promise<void> {
  // The current line's pieces: only each new chunk is searched for its end, never the whole line again.
  let pieces: Buffer[] = [];
  let size = 0;
  await drain(response.body, (data) => {
    let chunk = data as Buffer;
    let newline: number;
    while ((newline = chunk.indexOf(0x0a)) >= 0) {
      const line = Buffer.concat([...pieces, chunk.subarray(0, newline)]);
      chunk = chunk.subarray(newline + 1);
      pieces = [];
      size = 0;
      if (line.length > MAX_WATCH_EVENT_BYTES) throw eventTooLarge(response, what);
      const text = line.toString('utf8').trim();
      if (text === '') continue;
      const event = JSON.parse(text) as { type: WatchEventType; object: unknown };
      onEvent(event.type, event.object);
    }
    size += chunk.length;
    if (size > MAX_WATCH_EVENT_BYTES) throw eventTooLarge(response, what);
    // A copy: a small slice of a large chunk must not keep the whole chunk alive.
    if (chunk.length > 0) pieces.push(Buffer.from(chunk));
  });
}

const eventTooLarge = (response: Exchange, what: string) =>
  tooLarge(response, `${what}: an event is larger than ${mebibytes(MAX_WATCH_EVENT_BYTES)}`);

/** A list+watch source on a collection path, e.g. /apis/certificates.k8s.io/v1/certificatesigningrequests. */
export function restListWatchSource<T>(
  client: KubeClient,
  path: string,
  options: Selectors & { readonly random?: () => number } = {},
): ListWatchSource<T> {
  const { random = Math.random, ...selectors } = options;
  // Lowered for good when a page of this many objects was too large (objects of a megabyte: hostile CSRs).
  let pageLimit = Infinity;
  return {
    async list({ limit, continue: token, notOlderThan }) {
      const from =
        notOlderThan === undefined ? {} : { resourceVersion: notOlderThan, resourceVersionMatch: 'NotOlderThan' };
      for (;;) {
        const asked = Math.min(limit, pageLimit);
        try {
          const page = await client.request<{
            items: T[];
            metadata?: { resourceVersion?: string; continue?: string };
          }>('GET', path, { query: { limit: asked, ...selectors, continue: token, ...from } });
          return listPage(page.items, page.metadata?.resourceVersion, page.metadata?.continue);
        } catch (error) {
          if (!(error instanceof ResponseTooLargeError) || asked <= 1) throw error;
          pageLimit = Math.floor(asked / 2);
        }
      }
    },
    watch(resourceVersion, onEvent, onDone, signal) {
      return client.watch(path, watchQuery(resourceVersion, random, selectors), onEvent, onDone, signal);
    },
  };
}
