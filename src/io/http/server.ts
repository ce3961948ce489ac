// /healthz, /readyz and /metrics on one port. Readiness answers 503 with the reasons when not ready, so a
// probe's failure message (kubectl describe pod) says what is missing.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Readiness {
  readonly ready: boolean;
  /** One line per unready part, or a summary when ready. */
  readonly details: readonly string[];
}

export interface ProbeServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  readonly readiness: () => Readiness;
  /** Liveness: false when a loop that must keep running has stopped (e.g. a watchdog fired). */
  readonly alive?: () => boolean;
}

export interface ProbeServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      response.end(body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      reply(405, 'method not allowed\n');
      return;
    }
    switch (path) {
      case '/healthz':
      case '/livez': {
        const alive = options.alive?.() ?? true;
        reply(alive ? 200 : 503, alive ? 'ok\n' : 'not alive\n');
        return;
      }
      case '/readyz': {
        const readiness = options.readiness();
        reply(
          readiness.ready ? 200 : 503,
          `${readiness.ready ? 'ok' : 'not ready'}\n${readiness.details.map((line) => `${line}\n`).join('')}`,
        );
        return;
      }
      case '/metrics':
        options.registry.metrics().then(
          (text) => {
            reply(200, text, options.registry.contentType);
          },
          (error: unknown) => {
            reply(500, `metrics failed: ${error instanceof Error ? error.message : String(error)}\n`);
          },
        );
        return;
      default:
        reply(404, 'not found\n');
    }
  });
  // A probe port must not hold the process open for slow or idle clients at shutdown.
  server.keepAliveTimeout = 5_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
