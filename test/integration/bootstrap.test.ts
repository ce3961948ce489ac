// `kubeconfig-rotator bootstrap` end to end on the two test clusters.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { CertificatesV1Api, CoreV1Api } from '@kubernetes/client-node';
import { CSR_REQUESTER_ROLE } from '../../src/core/bootstrap/plan.ts';
import { renderKubeconfig } from '../../src/core/kubeconfig/render.ts';
import { kubeConfigFor } from '../support/kubeconfig.ts';
import { freePorts } from '../../scripts/testbed/processes.ts';
import { testCluster } from '../support/clusters.ts';
import { bindClusterRole, createBootstrapToken, eventually, statusCode, uniqueName } from '../support/kube.ts';
import {
  writeKubeletMount,
  rotated,
  sidecarTestFile,
  TestApprover,
  writeSidecarConfig,
  type PreparedTarget,
} from '../support/sidecar.ts';

const execute = promisify(execFile);
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const target = testCluster('target');
const source = testCluster('source');
const { scratch, secrets, startSidecar } = sidecarTestFile('bootstrap');

async function bootstrap(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execute(process.execPath, [CLI, 'bootstrap', ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

const clusters = (sourceName: string, targetName: string, ...more: string[]) => [
  '--source-name',
  sourceName,
  '--target-name',
  targetName,
  '--target-kubeconfig',
  target.state.kubeconfig,
  '--source-kubeconfig',
  source.state.kubeconfig,
  ...more,
];

async function tokenSecretsOf(sourceName: string) {
  const list = await target
    .admin()
    .makeApiClient(CoreV1Api)
    .listNamespacedSecret({ namespace: 'kube-system', labelSelector: `kubeconfig-rotator.io/source=${sourceName}` });
  return list.items;
}

describe('kubeconfig-rotator bootstrap', () => {
  it('--dry-run prints the objects with the token redacted and creates nothing', async () => {
    const sourceName = uniqueName('dry');
    const result = await bootstrap(...clusters(sourceName, 'east', '--dry-run'));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /kind: Secret\n[\s\S]*token-secret: <redacted>/);
    assert.match(result.stdout, /kubeconfig: <redacted>/);
    assert.match(result.stdout, new RegExp(`auth-extra-groups: system:bootstrappers:kubeconfig-rotator:${sourceName}`));
    assert.deepEqual(await tokenSecretsOf(sourceName), []);
  });

  it('gives a sidecar its first certificate; after the token TTL the token is refused and renewals go on with the certificate', async () => {
    const sourceName = uniqueName('west');
    const targetName = uniqueName('east');
    const namespace = uniqueName('kcr');
    const result = await bootstrap(...clusters(sourceName, targetName, '--ttl', '20s', '--namespace', namespace));
    assert.equal(result.code, 0, result.stderr);
    const [tokenSecret] = await tokenSecretsOf(sourceName);
    const tokenValue = `${Buffer.from(tokenSecret?.data?.['token-id'] ?? '', 'base64').toString()}.${Buffer.from(tokenSecret?.data?.['token-secret'] ?? '', 'base64').toString()}`;
    secrets.push(tokenValue);
    assert.ok(
      !result.stdout.includes(tokenValue.split('.')[1] ?? '-') &&
        !result.stderr.includes(tokenValue.split('.')[1] ?? '-'),
      'no secret printed',
    );

    // What the approver chart would grant the issued identity: renewing its own certificate.
    const identity = { commonName: `kcr-agent-${sourceName}`, organizations: ['kcr-agents'] };
    await bindClusterRole(target.admin(), `kcr-test-renewal-${sourceName}`, CSR_REQUESTER_ROLE, identity.commonName);
    // The sidecar reads the Secret as the kubelet mounts it.
    const secret = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace, name: `kubeconfig-rotator-bootstrap-${targetName}` });
    const dir = join(scratch.path, sourceName);
    writeKubeletMount(join(dir, 'bootstrap'), {
      kubeconfig: Buffer.from(secret.data?.kubeconfig ?? '', 'base64').toString(),
    });
    const prepared: PreparedTarget = {
      name: targetName,
      identity,
      bootstrap: { token: { id: '', secret: '' }, value: tokenValue, group: '' },
      bootstrapKubeconfig: join(dir, 'bootstrap', 'kubeconfig'),
      dir,
    };
    const approver = new TestApprover(target.admin(), targetName);
    const sidecar = startSidecar(writeSidecarConfig(prepared, { forceIntervalSeconds: 3 }));
    try {
      const first = await sidecar.waitForLog(rotated);
      assert.equal(first.authenticatedWith, 'bootstrap');
      assert.match(String(approver.seen.get(String(first.csr))?.spec.username), /^system:bootstrap:[a-z0-9]{6}$/);

      const expires = Date.parse(
        secret.metadata?.annotations?.['kubeconfig-rotator.io/bootstrap-token-expiration'] ?? '',
      );
      await sleep(Math.max(0, expires - Date.now()) + 1_000);
      const asToken = kubeConfigFor(target.endpoint(), { token: tokenValue });
      await assert.rejects(
        asToken.makeApiClient(CertificatesV1Api).listCertificateSigningRequest(),
        (error) => statusCode(error) === 401,
      );

      const marker = sidecar.lines.length;
      const renewal = await sidecar.waitForLog(rotated, 20_000, marker);
      assert.equal(renewal.authenticatedWith, 'current');
    } finally {
      await sidecar.stop();
      await approver.stop();
    }
  });

  it('re-running converges: one valid token per source, the older one removed, the source Secret updated', async () => {
    const sourceName = uniqueName('west');
    const first = await bootstrap(...clusters(sourceName, 'east'));
    const second = await bootstrap(...clusters(sourceName, 'east'));
    assert.equal(first.code, 0, first.stderr);
    assert.equal(second.code, 0, second.stderr);
    const tokens = await tokenSecretsOf(sourceName);
    assert.equal(tokens.length, 1);
    const id = Buffer.from(tokens[0]?.data?.['token-id'] ?? '', 'base64').toString();
    assert.match(second.stdout, new RegExp(`bootstrap token ${id} `));
    assert.match(second.stdout, /removed older tokens of this source: [a-z0-9]{6}/);
    const secret = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: 'kubeconfig-rotator', name: 'kubeconfig-rotator-bootstrap-east' });
    assert.ok(
      Buffer.from(secret.data?.kubeconfig ?? '', 'base64')
        .toString()
        .includes(`token: ${id}.`),
    );
    secrets.push(Buffer.from(tokens[0]?.data?.['token-secret'] ?? '', 'base64').toString());
  });

  it('says clearly when a cluster cannot be reached or the credential may not do the job', async () => {
    const unreachable = join(scratch.path, 'unreachable.kubeconfig');
    const [closedPort] = await freePorts(1);
    writeFileSync(
      unreachable,
      renderKubeconfig({
        name: 'x',
        server: `https://127.0.0.1:${String(closedPort)}`,
        certificateAuthority: { file: target.state.caCertFile },
        credential: { token: 'abcdef.0123456789abcdef' },
      }),
    );
    const down = await bootstrap(
      '--source-name',
      'west',
      '--target-name',
      'east',
      '--target-kubeconfig',
      unreachable,
      '--source-kubeconfig',
      source.state.kubeconfig,
    );
    assert.equal(down.code, 1);
    assert.match(
      down.stderr,
      new RegExp(`cannot reach the target cluster at https://127\\.0\\.0\\.1:${String(closedPort)}: .*ECONNREFUSED`),
    );

    // A credential that can only request CSRs, used as if it were an admin one.
    const limited = await createBootstrapToken(target.admin());
    secrets.push(limited.token.secret);
    const weak = join(scratch.path, 'weak.kubeconfig');
    writeFileSync(
      weak,
      renderKubeconfig({
        name: 'x',
        server: target.state.server,
        certificateAuthority: { file: target.state.caCertFile },
        credential: { token: limited.value },
      }),
    );
    const denied = await eventually(async () => {
      const result = await bootstrap(
        '--source-name',
        uniqueName('west'),
        '--target-name',
        'east',
        '--target-kubeconfig',
        weak,
        '--source-kubeconfig',
        source.state.kubeconfig,
      );
      assert.match(
        result.stderr,
        /is not allowed to apply Secret kube-system\/bootstrap-token-[a-z0-9]{6} in the target cluster: HTTP 403/,
      );
      return result;
    });
    assert.equal(denied.code, 1);

    const bad = await bootstrap(
      '--source-name',
      'West_1',
      '--target-name',
      'east',
      '--ttl',
      'forever',
      '--target-kubeconfig',
      '/nonexistent',
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--source-name "West_1" must be a DNS label/);
    assert.match(bad.stderr, /--ttl: "forever" is not a duration/);
    assert.match(bad.stderr, /--target-kubeconfig \/nonexistent: cannot be loaded/);
  });
});
