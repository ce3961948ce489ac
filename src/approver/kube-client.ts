// The approver's API client: client-node with a client-side rate limit, and with its connections reused.
// client-node asks its KubeConfig for credentials before every request (watches included), which is where
// the rate limit waits; it also builds a new connection pool for every request, so each one would pay a TCP
// and TLS handshake: here one pool per TLS identity is kept and reused, and a new one is made when the CA or
// the client certificate changes (files are re-read, as client-node does).
// The decision path (approval writes, SubjectAccessReviews) sends plain JSON with undici: client-node's model
// (de)serialization doubled the time of each of those requests (bench/approver.ts, decision latency).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ApiException, HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { request } from 'undici';
import type { RateLimiter } from './rate-limit.ts';

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

// What the apiserver's audit log shows for the decision path's requests.
const USER_AGENT = 'kubeconfig-rotator-approver';

function contents(data: string | undefined, file: string | undefined): string {
  if (data !== undefined) return data;
  return file === undefined ? '' : readFileSync(file, 'latin1');
}

/** A digest of what a connection's TLS depends on; undefined when it cannot be known (exec credential plugins). */
function tlsIdentity(kubeConfig: KubeConfig): string | undefined {
  const cluster = kubeConfig.getCurrentCluster();
  const user = kubeConfig.getCurrentUser();
  if (user?.exec !== undefined) return undefined;
  const hash = createHash('sha256');
  for (const part of [
    cluster?.server,
    String(cluster?.skipTLSVerify),
    cluster?.tlsServerName,
    contents(cluster?.caData, cluster?.caFile),
    contents(user?.certData, user?.certFile),
    contents(user?.keyData, user?.keyFile),
  ]) {
    hash.update(part ?? '').update('\u0000');
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
  let pool: { identity: string; dispatcher: Dispatcher } | undefined;
  class ApproverKubeConfig extends KubeConfig {
    override async applySecurityAuthentication(context: RequestContext): Promise<void> {
      await limiter.acquire();
      await super.applySecurityAuthentication(context);
      const fresh = context.getDispatcher();
      const identity = fresh === undefined ? undefined : tlsIdentity(this);
      if (fresh === undefined || identity === undefined) return;
      if (pool?.identity === identity) {
        context.setDispatcher(pool.dispatcher);
        fresh.close().catch(() => undefined);
        return;
      }
      // A new CA or client certificate: new connections; the old pool closes once its requests are done.
      pool?.dispatcher.close().catch(() => undefined);
      pool = { identity, dispatcher: fresh };
    }
  }
  const kubeConfig = new ApproverKubeConfig();
  kubeConfig.loadFromOptions({ clusters: base.clusters, users: base.users, contexts: base.contexts, currentContext: base.currentContext });
  return {
    kubeConfig,
    async send(method, path, body) {
      const url = `${kubeConfig.getCurrentCluster()?.server.replace(/\/+$/, '') ?? ''}${path}`;
      const context = new RequestContext(url, method === 'POST' ? HttpMethod.POST : HttpMethod.PUT);
      await kubeConfig.applySecurityAuthentication(context);
      const dispatcher = context.getDispatcher();
      const response = await request(url, {
        method,
        headers: { ...context.getHeaders(), 'content-type': 'application/json', accept: 'application/json', 'user-agent': USER_AGENT },
        body: JSON.stringify(body),
        ...(dispatcher === undefined ? {} : { dispatcher }),
      });
      const text = await response.body.text();
      // The body is an API Status (reason, message), read by errors.ts; response headers are not kept.
      if (response.statusCode < 200 || response.statusCode > 299) throw new ApiException(response.statusCode, `${method} ${path}`, text, {});
      return JSON.parse(text) as unknown;
    },
    close: async () => {
      await pool?.dispatcher.close();
      pool = undefined;
    },
  };
}
