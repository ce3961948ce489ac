// A stand-in apiserver that answers only /version, over TLS with a CA of its own, for the start-time version
// checks of the sidecar and the approver; and the CLI spawned against it.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCertificateAuthority, issueCertificate } from '../../scripts/testbed/pki.ts';

const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;

export interface VersionServer {
  readonly server: string;
  readonly caPem: string;
  /** What /version answers from now on. */
  version: unknown;
  /** Writes a kubeconfig for this server with no credential (anonymous, as /version is asked). */
  writeKubeconfig(path: string): void;
  close(): void;
}

/** `dnsName`: the only name its certificate holds (not its address), as behind a load balancer. */
export async function startVersionServer(version: unknown, options: { dnsName?: string } = {}): Promise<VersionServer> {
  const ca = createCertificateAuthority('version-server-ca');
  const serving = issueCertificate(ca, {
    commonName: 'apiserver',
    usage: 'server',
    ...(options.dnsName === undefined ? { ipAddresses: ['127.0.0.1'] } : { dnsNames: [options.dnsName] }),
  });
  const state = { version };
  const server = createServer({ cert: serving.cert, key: serving.key }, (request, response) => {
    if (request.url !== '/version') response.writeHead(404).end();
    else response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(state.version));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  return {
    server: url,
    caPem: ca.cert,
    get version() {
      return state.version;
    },
    set version(value: unknown) {
      state.version = value;
    },
    writeKubeconfig(path) {
      const cluster = { server: url, 'certificate-authority-data': Buffer.from(ca.cert).toString('base64') };
      writeFileSync(
        path,
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'stand-in', cluster }],
          users: [{ name: 'anonymous', user: {} }],
          contexts: [{ name: 'stand-in', context: { cluster: 'stand-in', user: 'anonymous' } }],
          'current-context': 'stand-in',
        }),
      );
    },
    close() {
      server.close();
    },
  };
}

/** Runs the CLI to its exit (asynchronously: the stand-in server answers from this process). */
export async function runCli(args: readonly string[]): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { status, stderr };
}
