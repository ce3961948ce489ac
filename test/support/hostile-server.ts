// Local HTTP/2 TLS servers that misbehave on purpose, for the API client's and the rotation loop's unit tests
// (issue 22): each answers with the test's handler and counts the connections it saw close.
import {
  createSecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createCertificateAuthority, issueCertificate } from '../../scripts/testbed/pki.ts';

export type HostileHandler = (request: Http2ServerRequest, response: Http2ServerResponse, url: URL) => void;

const ca = createCertificateAuthority('hostile-server-ca');
const serving = issueCertificate(ca, { commonName: 'apiserver', usage: 'server', ipAddresses: ['127.0.0.1'] });

export interface HostileServer {
  readonly url: string;
  readonly port: number;
  /** The CA its serving certificate (for 127.0.0.1) is signed by. */
  readonly caPem: string;
  closedConnections(): number;
  stop(): Promise<void>;
}

export async function hostileServer(handler: HostileHandler): Promise<HostileServer> {
  let closedConnections = 0;
  const sessions = new Set<ServerHttp2Session>();
  const server = createSecureServer({ key: serving.key, cert: serving.cert }, (request, response) => {
    handler(request, response, new URL(request.url, 'https://hostile'));
  });
  server.on('session', (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => {
      sessions.delete(session);
      closedConnections++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${String(port)}`,
    port,
    caPem: ca.cert,
    closedConnections: () => closedConnections,
    async stop() {
      for (const session of sessions) session.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Answers `{`, then a space every 100 ms of real time, and `}` after 5 s: valid JSON in the end, so that a
 * client without a deadline ends the test too. `onByte` counts the bytes sent.
 */
export function drip(response: Http2ServerResponse, onByte: (sent: number) => void = () => undefined): void {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.write('{');
  let sent = 0;
  const timer = setInterval(() => {
    onByte(++sent);
    if (sent < 50) response.write(' ');
    else {
      clearInterval(timer);
      response.end('}');
    }
  }, 100);
  response.stream.once('close', () => {
    clearInterval(timer);
  });
}
