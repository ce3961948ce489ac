// The approver's API client: client-node with a client-side rate limit, and with its connections reused.
// client-node asks its KubeConfig for credentials before every request (watches included), which is where
// the rate limit waits; it also builds a new connection pool for every request, so each one would pay a TCP
// and TLS handshake: here one pool is kept for the TLS material client-node read for the request (CA, client
// certificate and key, files re-read as client-node does), and a new one is made when that material changes.
// The decision path (approval writes, SubjectAccessReviews) sends plain JSON with undici: client-node's model
// (de)serialization doubled the time of each of those requests (bench/approver.ts, decision latency).
import { createHash } from 'node:crypto';
import { ApiException, HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import type { RateLimiter } from '../io/kube/rate-limit.ts';

type DispatcherOptions = ReturnType<KubeConfig['createDispatcherOptions']>;
type ConnectOptions = Extract<DispatcherOptions, { type: 'agent' }>['connect'];

// What the apiserver's audit log shows for the decision path's requests.
const USER_AGENT = 'kubeconfig-rotator-approver';
// undici's default is 300 s: a hung connection would hold a decision worker (and shutdown) that long.
const DECISION_REQUEST_TIMEOUT_MS = 30_000;

/** A digest of the options a connection is made with (CA, client certificate and key, TLS settings). */
function connectionIdentity(connect: ConnectOptions): string {
  const hash = createHash('sha256');
  for (const [key, value] of Object.entries(connect).sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(key).update('\u0000');
    hash.update(Buffer.isBuffer(value) ? value : String(value)).update('\u0000');
  }
  return hash.digest('hex');
}

export interface ApproverClient {
  readonly kubeConfig: KubeConfig;
  /**
   * One JSON request to an API path, with the same limiter, credentials and connections as `kubeConfig`; the
   * parsed response body, or an ApiException (as client-node throws) for any status other than 2xx.
   */
  send(method: 'POST' | 'PUT', path: string, body: unknown): Promise<unknown>;
  /** Closes the pooled connections once their requests are done (at shutdown). */
  close(): Promise<void>;
}

/** A copy of `base` whose requests wait for `limiter` and share connections. */
export function approverClient(base: KubeConfig, limiter: RateLimiter): ApproverClient {
  let pool: { identity: string; dispatcher: Agent } | undefined;
  class ApproverKubeConfig extends KubeConfig {
    override async applySecurityAuthentication(context: RequestContext): Promise<void> {
      await limiter.acquire();
      await super.applySecurityAuthentication(context);
      // createDispatcherOptions left the request without a dispatcher of its own: it goes through the pool.
      if (context.getDispatcher() === undefined && pool !== undefined) context.setDispatcher(pool.dispatcher);
    }

    // client-node calls this with the TLS material it has just read for the request, so the pool is chosen by the
    // very bytes the request would use; proxies and plain connections are left to client-node.
    override createDispatcherOptions(...args: Parameters<KubeConfig['createDispatcherOptions']>): DispatcherOptions {
      const options = super.createDispatcherOptions(...args);
      if (options.type !== 'agent') return options;
      const identity = connectionIdentity(options.connect);
      if (pool?.identity !== identity) {
        // A new CA or client certificate: new connections; the old pool closes once its requests are done.
        pool?.dispatcher.close().catch(() => undefined);
        // The same options client-node would give its own Agent (its type differs only in optional-property strictness).
        pool = {
          identity,
          dispatcher: new Agent({ connect: options.connect as NonNullable<Agent.Options['connect']> }),
        };
      }
      return { type: 'none' };
    }
  }
  const kubeConfig = new ApproverKubeConfig();
  kubeConfig.loadFromOptions({
    clusters: base.clusters,
    users: base.users,
    contexts: base.contexts,
    currentContext: base.currentContext,
  });
  return {
    kubeConfig,
    async send(method, path, body) {
      const url = `${kubeConfig.getCurrentCluster()?.server.replace(/\/+$/, '') ?? ''}${path}`;
      const context = new RequestContext(url, method === 'POST' ? HttpMethod.POST : HttpMethod.PUT);
      await kubeConfig.applySecurityAuthentication(context);
      const dispatcher = context.getDispatcher();
      const response = await request(url, {
        method,
        headersTimeout: DECISION_REQUEST_TIMEOUT_MS,
        bodyTimeout: DECISION_REQUEST_TIMEOUT_MS,
        headers: {
          ...context.getHeaders(),
          'content-type': 'application/json',
          accept: 'application/json',
          'user-agent': USER_AGENT,
        },
        body: JSON.stringify(body),
        ...(dispatcher === undefined ? {} : { dispatcher }),
      });
      const text = await response.body.text();
      // The body is an API Status (reason, message), read by errors.ts; response headers are not kept.
      if (response.statusCode < 200 || response.statusCode > 299)
        throw new ApiException(response.statusCode, `${method} ${path}`, text, {});
      return JSON.parse(text) as unknown;
    },
    close: async () => {
      await pool?.dispatcher.close();
      pool = undefined;
    },
  };
}
