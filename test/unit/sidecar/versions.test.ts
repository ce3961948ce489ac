// The sidecar's start-time check of each target's Kubernetes release, against a stand-in apiserver's /version.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { targetSchema } from '../../../src/core/config/sidecar.ts';
import { targetVersionProblems } from '../../../src/sidecar/versions.ts';
import { createCertificateAuthority, issueCertificate } from '../../../scripts/testbed/pki.ts';

const ca = createCertificateAuthority('versions-test-ca');
const serving = issueCertificate(ca, { commonName: 'apiserver', usage: 'server', ipAddresses: ['127.0.0.1'] });

const certificateTarget = targetSchema.parse({
  name: 'certs',
  bootstrapKubeconfig: '/bootstrap/certs',
  identity: { commonName: 'agent' },
  sinks: { directory: { path: '/out/certs' } },
});
const federatedTarget = targetSchema.parse({
  name: 'federated',
  credential: 'federated',
  bootstrapKubeconfig: '/bootstrap/federated',
  audiences: ['kubeconfig-rotator:target'],
  targetUser: 'source-a:system:serviceaccount:ns:agent',
  sinks: { directory: { path: '/out/federated' } },
});

describe('targetVersionProblems', () => {
  let server: Server;
  let version: unknown = { major: '1', minor: '29', gitVersion: 'v1.29.9' };
  let bootstrap: { server: string; caPem: string };

  before(async () => {
    server = createServer({ cert: serving.cert, key: serving.key }, (request, response) => {
      if (request.url !== '/version') response.writeHead(404).end();
      else response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(version));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    bootstrap = { server: `https://127.0.0.1:${String((server.address() as AddressInfo).port)}`, caPem: ca.cert };
  });
  after(() => {
    server.close();
  });

  const bootstraps = () =>
    new Map([
      ['certs', bootstrap],
      ['federated', bootstrap],
    ]);

  it('names a federated target whose cluster predates structured authentication, by index and name', async () => {
    assert.deepEqual(await targetVersionProblems([certificateTarget, federatedTarget], bootstraps()), [
      '  targets[1] (federated): structured authentication configuration (the jwt authenticator that accepts federated tokens) needs Kubernetes 1.30 or later; the cluster runs v1.29.9\n',
    ]);
  });

  it('passes every target on a cluster new enough', async () => {
    version = { major: '1', minor: '30+', gitVersion: 'v1.30.1-eks-1' };
    assert.deepEqual(await targetVersionProblems([certificateTarget, federatedTarget], bootstraps()), []);
  });

  it('passes a target whose version is unknown: no bootstrap kubeconfig yet, an unreachable or odd apiserver', async () => {
    version = { major: '1', minor: '20' };
    assert.equal((await targetVersionProblems([certificateTarget], bootstraps())).length, 1, 'the control');
    assert.deepEqual(await targetVersionProblems([certificateTarget], new Map()), []);
    const closed = { server: 'https://127.0.0.1:1', caPem: ca.cert };
    assert.deepEqual(await targetVersionProblems([certificateTarget], new Map([['certs', closed]])), []);
    version = 'not a version';
    assert.deepEqual(await targetVersionProblems([certificateTarget], bootstraps()), []);
  });
});
