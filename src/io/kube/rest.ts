// The Kubernetes API client of the sidecar and the approver: JSON requests and watches, with the credentials of
// credentials.ts, on the connections of transport.ts (HTTP/2 where the apiserver offers it). The few kinds of
// calls these make (CSRs, Secrets, Events, Leases, SubjectAccessReviews, TokenRequests, a workload patch) do not
// need @kubernetes/client-node, which costs about 60 MiB of RSS merely imported (bench/sidecar.ts).
// Connections are kept per TLS identity (CA, client certificate and key): when the files rotate, new requests
// get new connections and the old ones close once their requests and watches are done.
import type { Readable } from 'node:stream';
import type { ClientConfig } from '../../core/kubeconfig/client-config.ts';
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

// A hung connection must not hold a rotation, a decision (and shutdown) for long.
const REQUEST_TIMEOUT_MS = 30_000;

export interface KubeClientOptions extends CredentialOptions {
  /** Overrides the credentials the config describes (e.g. a fixed token for one check). */
  readonly credentials?: Credentials;
  /** Every request and watch waits for it first (the approver's client-side rate limits). */
  readonly limiter?: RateLimiter;
  /** What the apiserver's audit log shows as the client. */
  readonly userAgent?: string;
}

export function createKubeClient(config: ClientConfig, options: KubeClientOptions = {}): KubeClient {
  const credentials = options.credentials ?? kubeCredentials(config, options);
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
      connections: connections(server, {
        ...(caPem === undefined ? {} : { caPem }),
        ...(certPem === undefined || keyPem === undefined ? {} : { certPem, keyPem }),
        rejectUnauthorized: !config.insecureSkipTlsVerify,
        ...(config.tlsServerName === undefined ? {} : { servername: config.tlsServerName }),
      }),
    };
    return pool.connections;
  }

  /** Sends one request; resolves with the response once its headers are in. */
  async function open(method: Method, path: string, parameters: RequestParameters, timeoutMs: number) {
    if (closed) throw new Error('the Kubernetes client is closed');
    await options.limiter?.acquire();
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

  async function readBody(response: Readable): Promise<string> {
    const chunks: Buffer[] = [];
    await drain(response, (chunk) => chunks.push(chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Opens, and once more with fresh credentials when the API refuses renewable ones (401). */
  async function openAuthorized(method: Method, path: string, parameters: RequestParameters, timeoutMs: number) {
    const first = await open(method, path, parameters, timeoutMs);
    if (first.status !== 401 || !credentials.refused()) return first;
    first.body.resume();
    return open(method, path, parameters, timeoutMs);
  }

  async function failure(method: Method, path: string, response: Exchange): Promise<KubeApiError> {
    const text = await readBody(response.body);
    // The body is an API Status (reason, message); response headers are not kept.
    return new KubeApiError(`${method} ${path}`, statusOf(response.status, text));
  }

  return {
    config,
    async request<T>(method: Method, path: string, parameters: RequestParameters = {}): Promise<T> {
      const response = await openAuthorized(method, path, parameters, REQUEST_TIMEOUT_MS);
      if (response.status < 200 || response.status > 299) throw await failure(method, path, response);
      const text = await readBody(response.body);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    },
    async watch(path, query, onEvent, onDone) {
      const aborter = new AbortController();
      // The informer's watchdog, not a socket timeout, notices a silent watch.
      const response = await openAuthorized(
        'GET',
        path,
        { query: { ...query, watch: true }, signal: aborter.signal },
        0,
      );
      let ended = false;
      const end = (error?: unknown) => {
        if (ended) return;
        ended = true;
        onDone(error);
      };
      if (response.status !== 200) {
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
      consumeEvents(response.body, onEvent).then(
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
      try {
        onChunk(chunk);
      } catch (error) {
        body.destroy(error instanceof Error ? error : new Error(String(error)));
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
  });
}

async function consumeEvents(
  response: Readable,
  onEvent: (type: WatchEventType, object: unknown) => void,
): Promise<void> {
  response.setEncoding('utf8');
  let buffered = '';
  await drain(response, (chunk) => {
    buffered += chunk as string;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line === '') continue;
      const event = JSON.parse(line) as { type: WatchEventType; object: unknown };
      onEvent(event.type, event.object);
    }
  });
}

/** A list+watch source on a collection path, e.g. /apis/certificates.k8s.io/v1/certificatesigningrequests. */
export function restListWatchSource<T>(
  client: KubeClient,
  path: string,
  options: Selectors & { readonly random?: () => number } = {},
): ListWatchSource<T> {
  const { random = Math.random, ...selectors } = options;
  return {
    async list({ limit, continue: token }) {
      const page = await client.request<{
        items: T[];
        metadata?: { resourceVersion?: string; continue?: string };
      }>('GET', path, { query: { limit, ...selectors, continue: token } });
      return listPage(page.items, page.metadata?.resourceVersion, page.metadata?.continue);
    },
    watch(resourceVersion, onEvent, onDone) {
      return client.watch(path, watchQuery(resourceVersion, random, selectors), onEvent, onDone);
    },
  };
}
