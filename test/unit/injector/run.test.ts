// The injector command when it cannot start: it must exit, not hang on the certificate watcher it started first.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { createCertificateAuthority, issueCertificate } from '../../../src/core/pki/issue.ts';
import { CliProcess } from '../../../scripts/testbed/cli-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'kcr-injector-run-'));
let taken: Server;
let takenPort = 0;

before(async () => {
  const validity = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000) };
  const serving = issueCertificate(
    createCertificateAuthority('test-ca', validity),
    { commonName: 'injector', usage: 'server', ipAddresses: ['127.0.0.1'] },
    validity,
  );
  writeFileSync(join(dir, 'tls.crt'), serving.cert);
  writeFileSync(join(dir, 'tls.key'), serving.key);
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  takenPort = (taken.address() as { port: number }).port;
});

after(async () => {
  await new Promise((resolve) => taken.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `injector` with files TLS on the given ports until it exits, killing it if it is still up after 15 s. */
async function injector(name: string, webhookPort: number, probePort: number): Promise<CliProcess> {
  const config = join(dir, `${name}.yaml`);
  writeFileSync(
    config,
    stringify({
      listen: { host: '127.0.0.1', port: webhookPort },
      probes: { host: '127.0.0.1', port: probePort },
      tls: { mode: 'files', certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') },
      sidecar: { image: 'kubeconfig-rotator:test' },
      targets: [],
    }),
  );
  const child = new CliProcess(['injector', '--config', config], { label: 'injector' });
  // A process that never exits is the failure under test: end it so the test reports it instead of hanging.
  const timer = setTimeout(() => void child.stop('SIGKILL'), 15_000);
  await child.exited;
  clearTimeout(timer);
  return child;
}

describe('injector start failures', () => {
  it('exits with status 1 when the webhook port is taken', async () => {
    const child = await injector('webhook-taken', takenPort, 0);
    assert.deepEqual(await child.exited, { code: 1, signal: null });
    assert.match(child.stderr, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${String(takenPort)}`));
  });

  it('exits with status 1 when the probe port is taken, closing the webhook it had opened', async () => {
    const child = await injector('probes-taken', 0, takenPort);
    assert.deepEqual(await child.exited, { code: 1, signal: null });
    assert.match(child.stderr, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${String(takenPort)}`));
  });
});
