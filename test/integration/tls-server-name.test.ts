// Issue 22: a target reached at an address its serving certificate does not name (a load balancer, a tunnel),
// with the bootstrap kubeconfig's tls-server-name naming what the certificate does. The first credential
// worked; every renewal, acceptance check and consumer of the published kubeconfig then failed hostname
// verification. Here the target is reached through a TCP forwarder on 127.0.0.2, which the test apiserver's
// certificate (localhost, 127.0.0.1, kubernetes...) does not name; a certificate target and a token target
// each renew three times through it, and Go consumers (client-go, Argo CD's own reading of its cluster
// Secret) call the target with what was published.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { ensureConsumerProbes, ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { testCluster } from '../support/clusters.ts';
import { eventually } from '../support/kube.ts';
import {
  outputDir,
  prepareTarget,
  sidecarTestFile,
  TestApprover,
  testSidecarSettings,
  writeKubeletMount,
  type LogLine,
  type PreparedTarget,
  type SidecarProcess,
} from '../support/sidecar.ts';
import { prepareTokenTarget, tokenOf, type PreparedTokenTarget } from '../support/token-target.ts';

const run = promisify(execFile);
const target = testCluster('target');
const source = testCluster('source');
const { startSidecar, remember, secrets } = sidecarTestFile('tls-server-name');
// A name the apiserver's serving certificate holds (scripts/testbed/cluster.ts); its address 127.0.0.2 is not.
const SERVER_NAME = 'kubernetes';
const NAMESPACE = 'default';

/** Forwards every connection to 127.0.0.2:<port> to the target apiserver, byte for byte. */
async function startForwarder(to: URL): Promise<{ server: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const forwarder: Server = createServer((inbound) => {
    const outbound = connect(Number(to.port), to.hostname);
    for (const [one, other] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(one);
      one.pipe(other);
      one.on('error', () => other.destroy());
      one.on('close', () => {
        sockets.delete(one);
        other.destroy();
      });
    }
  });
  await new Promise<void>((resolve, reject) => {
    forwarder.once('error', reject);
    forwarder.listen(0, '127.0.0.2', resolve);
  });
  const address = forwarder.address();
  assert.ok(address !== null && typeof address === 'object');
  return {
    server: `https://127.0.0.2:${String(address.port)}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => forwarder.close(resolve));
    },
  };
}

/** The kubeconfig with its (only) cluster reached at `server`, its certificate checked against SERVER_NAME. */
function throughForwarder(kubeconfig: string, server: string): string {
  const document = parse(kubeconfig) as { clusters: { cluster: Record<string, unknown> }[] };
  for (const { cluster } of document.clusters) Object.assign(cluster, { server, 'tls-server-name': SERVER_NAME });
  return stringify(document);
}

interface ProbeLine {
  readonly event: string;
  readonly ok: boolean;
  readonly user?: string;
  readonly error?: string;
}

/** A consumer probe's first call (or its fatal start), then the probe is stopped. */
async function firstCall(bin: string, args: readonly string[]): Promise<ProbeLine> {
  const child = spawn(bin, [...args, '-source-kubeconfig', source.state.kubeconfig], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const lines = createInterface({ input: child.stdout });
    const timeout = AbortSignal.timeout(60_000);
    for await (const text of lines) {
      if (timeout.aborted) break;
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text) as ProbeLine;
      if (line.event === 'call' || line.event === 'fatal') return line;
    }
    throw new Error(`${bin}: no call within 60 s`);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const rotatedWith = (auth: string) => (line: LogLine) =>
  (line.msg === 'certificate rotated' || line.msg === 'token rotated') && line.authenticatedWith === auth;

describe('a target known by an address its certificate does not name, with tls-server-name', () => {
  let forwarder: Awaited<ReturnType<typeof startForwarder>>;
  let certificate: PreparedTarget;
  let token: PreparedTokenTarget & { readonly firstToken: string };
  let approver: TestApprover;
  let sidecar: SidecarProcess;
  let kubectl = '';
  const argocdSecret = () => `${certificate.name}-argocd`;
  const tokenSecret = () => `${token.name}-kubeconfig`;

  before(async () => {
    kubectl = join(await ensureControlPlane(), 'kubectl');
    forwarder = await startForwarder(new URL(target.state.server));
    certificate = await prepareTarget(target);
    token = await prepareTokenTarget(target, source, { targetNamespace: 'kcr-tls-server-name' });
    for (const one of [certificate, token])
      writeKubeletMount(join(one.dir, 'bootstrap'), {
        kubeconfig: throughForwarder(readFileSync(one.bootstrapKubeconfig, 'utf8'), forwarder.server),
      });
    approver = new TestApprover(target.admin(), certificate.name);
    const rotation = { minRemainingSeconds: 60, forceIntervalSeconds: 4 };
    const config = {
      ...testSidecarSettings(certificate.dir, source.state.kubeconfig),
      targets: [
        {
          name: certificate.name,
          bootstrapKubeconfig: certificate.bootstrapKubeconfig,
          identity: certificate.identity,
          expirationSeconds: 600,
          rotation,
          sinks: {
            directory: { path: outputDir(certificate) },
            secret: { namespace: NAMESPACE, name: argocdSecret(), format: 'argocd' },
          },
        },
        {
          name: token.name,
          bootstrapKubeconfig: token.bootstrapKubeconfig,
          ...token.targetFields,
          expirationSeconds: 600,
          // Checks between renewals: the acceptance check's client goes through the forwarder too.
          revocationCheckSeconds: 1,
          rotation,
          sinks: {
            directory: { path: join(token.dir, 'out') },
            secret: { namespace: NAMESPACE, name: tokenSecret() },
          },
        },
      ],
    };
    const configPath = join(certificate.dir, 'config.yaml');
    writeFileSync(configPath, stringify(config));
    sidecar = startSidecar(configPath);
  });

  after(async () => {
    remember(certificate);
    secrets.push(token.firstToken, tokenOf(readFileSync(token.bootstrapKubeconfig, 'utf8')));
    await sidecar.stop();
    await approver.stop();
    await forwarder.close();
  });

  it('the forwarded address is not in the certificate: refused without the name, accepted with it (the control)', async () => {
    const args = ['--kubeconfig', target.state.kubeconfig, '--server', forwarder.server, 'auth', 'whoami'];
    await assert.rejects(run(kubectl, args), /x509: certificate is valid for .*not 127\.0\.0\.2/);
    await run(kubectl, [...args, '--tls-server-name', SERVER_NAME]);
  });

  it('renews each target three times with its own credential through that address, with no failure', async () => {
    for (const name of [certificate.name, token.name]) {
      const renewal = (line: LogLine) => rotatedWith('current')(line) && line.target === name;
      await eventually(
        async () => {
          await Promise.resolve();
          if (sidecar.count(renewal) < 3) throw new Error(`${name}: ${String(sidecar.count(renewal))} renewals so far`);
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
    }
    assert.equal(sidecar.count(rotatedWith('bootstrap')), 2, 'one first credential per target, none after');
    const failures = /^rotation failed|refuses the current|^re-bootstrap needed/;
    assert.deepEqual(
      sidecar.lines.filter((line) => failures.test(line.msg)).map((line) => line.error),
      [],
      'no renewal failed, no check found the credential refused',
    );
    const published = readFileSync(join(outputDir(certificate), 'kubeconfig'), 'utf8');
    assert.match(published, new RegExp(`tls-server-name: ${SERVER_NAME}`));
  });

  it('consumers call the target with what was published: client-go on the directories and a Secret, Argo CD on its cluster Secret', async () => {
    const bin = await ensureConsumerProbes();
    const clientGo = join(bin, 'client-go-probe');
    const calls = [
      [certificate.identity.commonName, clientGo, ['-kubeconfig', join(outputDir(certificate), 'kubeconfig')]],
      [certificate.identity.commonName, join(bin, 'argocd-probe'), ['-namespace', NAMESPACE, '-name', argocdSecret()]],
      [token.user, clientGo, ['-kubeconfig', join(token.dir, 'out', 'kubeconfig')]],
      [token.user, clientGo, ['-namespace', NAMESPACE, '-name', tokenSecret(), '-key', 'config']],
    ] as const;
    for (const [user, probe, args] of calls) {
      const call = await firstCall(probe, args);
      assert.deepEqual(
        { ok: call.ok, user: call.user, error: call.error },
        { ok: true, user, error: undefined },
        args.join(' '),
      );
    }
  });
});
