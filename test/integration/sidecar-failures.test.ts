// The sidecar when things go wrong, against the real control plane: denials, an apiserver outage, damaged
// outputs, expired credentials, and bad input at start.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { DirectorySink } from '../../src/sidecar/sinks/directory.ts';
import { clustersRoot, ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { startClusters, startComponent, stopCluster, stopComponent } from '../../scripts/testbed/cluster.ts';
import { issueCertificate } from '../../scripts/testbed/pki.ts';
import { clusterFromState, testCluster, type TestCluster } from '../support/clusters.ts';
import { createBootstrapToken, eventually, uniqueName } from '../support/kube.ts';
import {
  bindRenewals,
  bootstrapKubeconfigFor,
  createPodStandIn,
  outputDir,
  prepareTarget,
  rotated,
  sidecarTestFile,
  TestApprover,
  writeKubeletMount,
  writeSidecarConfig,
  type LogLine,
  type PreparedTarget,
  type SidecarProcess,
} from '../support/sidecar.ts';

const target = testCluster('target');
const source = testCluster('source');
const { secrets, startSidecar, remember } = sidecarTestFile('sidecar-failures');

const readOutput = (prepared: PreparedTarget, file: string) => readFileSync(join(outputDir(prepared), file), 'utf8');
const failed = (line: LogLine) => line.msg === 'rotation failed; the current certificate stays';

async function metrics(sidecar: SidecarProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${String(await sidecar.port())}/metrics`)).text();
}

describe('a denied CSR', () => {
  it('is reported by log, metric and an event on the pod; the current certificate stays; retries back off', async () => {
    const prepared = await prepareTarget(target);
    const approver = new TestApprover(target.admin(), prepared.name);
    const pod = uniqueName('agent');
    const core = source.admin().makeApiClient(CoreV1Api);
    await createPodStandIn(source, 'default', pod);
    const sidecar = startSidecar(
      writeSidecarConfig(prepared, { forceIntervalSeconds: 2, sourceKubeconfig: source.state.kubeconfig }),
      {
        env: { POD_NAME: pod, POD_NAMESPACE: 'default' },
      },
    );
    try {
      await sidecar.waitForLog(rotated);
      const certificate = readOutput(prepared, 'tls.crt');
      approver.decide = () => 'deny';
      const firstDenial = await sidecar.waitForLog((line) => failed(line) && line.result === 'denied');
      assert.match(String(firstDenial.error), /was denied: TestDenied: denied by the test approver/);
      const secondDenial = await sidecar.waitForLog((line) => failed(line) && line.failures === 2);
      const thirdDenial = await sidecar.waitForLog((line) => failed(line) && line.failures === 3);
      // 2 s, then 4 s, each less up to 20% jitter.
      const gap = (a: LogLine, b: LogLine) => Date.parse(String(b.time)) - Date.parse(String(a.time));
      assert.ok(
        gap(firstDenial, secondDenial) >= 1_600,
        `first retry after ${String(gap(firstDenial, secondDenial))} ms`,
      );
      assert.ok(
        gap(secondDenial, thirdDenial) >= 3_200,
        `second retry after ${String(gap(secondDenial, thirdDenial))} ms`,
      );
      assert.ok(gap(secondDenial, thirdDenial) > gap(firstDenial, secondDenial));

      assert.equal(readOutput(prepared, 'tls.crt'), certificate, 'the published certificate is untouched');
      assert.match(
        await metrics(sidecar),
        new RegExp(`kubeconfig_rotator_rotations_total\\{target="${prepared.name}",result="denied"\\} [3-9]`),
      );
      const events = await eventually(async () => {
        const list = await core.listNamespacedEvent({
          namespace: 'default',
          fieldSelector: `involvedObject.name=${pod}`,
        });
        const denied = list.items.filter((event) => event.reason === 'CertificateDenied');
        assert.ok(denied.length > 0, 'no CertificateDenied event yet');
        return denied;
      });
      assert.equal(events[0]?.type, 'Warning');
      assert.match(events[0].message ?? '', /was denied: TestDenied/);
    } finally {
      remember(prepared);
      await sidecar.stop();
      await approver.stop();
    }
  });
});

describe('the target API down for a while', () => {
  let outage: TestCluster;
  const name = uniqueName('outage');

  before(async () => {
    // A cluster of its own: stopping the shared target's apiserver would disturb other tests.
    const [state] = await startClusters([name], { binDir: await ensureControlPlane(), root: clustersRoot() });
    if (state === undefined) throw new Error('outage cluster did not start');
    outage = clusterFromState(state);
  });
  after(async () => {
    await stopCluster(clustersRoot(), name);
  });

  it('leaves the output untouched, retries with growing backoff, and recovers when the apiserver returns', async () => {
    const prepared = await prepareTarget(outage);
    const approver = new TestApprover(outage.admin(), prepared.name);
    const sidecar = startSidecar(writeSidecarConfig(prepared, { forceIntervalSeconds: 2 }));
    try {
      await sidecar.waitForLog(rotated);
      const published = ['tls.crt', 'tls.key', 'kubeconfig'].map((file) => readOutput(prepared, file));
      const marker = sidecar.lines.length;
      await stopComponent(outage.state, 'kube-apiserver');
      const failures = [];
      for (let n = 1; n <= 3; n++)
        failures.push(await sidecar.waitForLog((line) => failed(line) && line.failures === n, 30_000, marker));
      for (const failure of failures) assert.match(String(failure.error), /ECONNREFUSED|connect|fetch failed/i);
      const delays = failures.map((line) => Date.parse(String(line.retryAt)) - Date.parse(String(line.time)));
      assert.ok(delays[0] !== undefined && delays[0] >= 1_500 && delays[0] <= 2_100, `delays ${delays.join(', ')}`);
      assert.ok(
        (delays[1] ?? 0) > delays[0] && (delays[2] ?? 0) > (delays[1] ?? 0),
        `delays ${delays.join(', ')} grow`,
      );
      assert.deepEqual(
        ['tls.crt', 'tls.key', 'kubeconfig'].map((file) => readOutput(prepared, file)),
        published,
        'output untouched during the outage',
      );

      outage = clusterFromState(await startComponent(outage.state, 'kube-apiserver'));
      const recovered = await sidecar.waitForLog(rotated, 60_000, marker);
      assert.notEqual(recovered.serial, undefined);
      assert.notEqual(readOutput(prepared, 'tls.crt'), published[0]);
    } finally {
      remember(prepared);
      await sidecar.stop();
      await approver.stop();
    }
  });
});

describe('damaged outputs', () => {
  let prepared: PreparedTarget;
  let approver: TestApprover;
  let sidecar: SidecarProcess;
  const secretName = uniqueName('kcr-damage');
  const core = () => source.admin().makeApiClient(CoreV1Api);

  before(async () => {
    prepared = await prepareTarget(target);
    approver = new TestApprover(target.admin(), prepared.name);
    // No periodic re-read within the test's time: repairs must come from the watches.
    sidecar = startSidecar(
      writeSidecarConfig(prepared, {
        secret: { namespace: 'default', name: secretName },
        sourceKubeconfig: source.state.kubeconfig,
        rereadIntervalSeconds: 3600,
      }),
    );
    await sidecar.waitForLog(rotated);
  });
  after(async () => {
    remember(prepared);
    await sidecar.stop();
    await approver.stop();
  });

  async function repairedWithin(
    ms: number,
    damage: () => void | Promise<void>,
    sink: 'directory' | 'secret',
  ): Promise<number> {
    const marker = sidecar.lines.length;
    const started = Date.now();
    await damage();
    await sidecar.waitForLog(
      (line) => line.msg === 'output was missing or changed; rewrote it' && String(line.sink).startsWith(sink),
      ms,
      marker,
    );
    return Date.now() - started;
  }

  it('a deleted directory is rewritten within seconds', async () => {
    const certificate = readOutput(prepared, 'tls.crt');
    const took = await repairedWithin(
      5_000,
      () => {
        rmSync(outputDir(prepared), { recursive: true, force: true });
      },
      'directory',
    );
    assert.equal(readOutput(prepared, 'tls.crt'), certificate);
    assert.ok(took < 5_000);
  });

  it('a corrupted certificate file is rewritten', async () => {
    const certificate = readOutput(prepared, 'tls.crt');
    await repairedWithin(
      5_000,
      () => {
        writeFileSync(join(outputDir(prepared), '..data', 'tls.crt'), 'garbage');
      },
      'directory',
    );
    assert.equal(readOutput(prepared, 'tls.crt'), certificate);
  });

  it('a deleted or redirected stable link is put back', async () => {
    await repairedWithin(
      5_000,
      () => {
        unlinkSync(join(outputDir(prepared), 'tls.key'));
      },
      'directory',
    );
    assert.ok(readOutput(prepared, 'tls.key').includes('PRIVATE KEY'));
    await repairedWithin(
      5_000,
      () => {
        unlinkSync(join(outputDir(prepared), 'kubeconfig'));
        symlinkSync('/etc/hostname', join(outputDir(prepared), 'kubeconfig'));
      },
      'directory',
    );
    assert.match(readOutput(prepared, 'kubeconfig'), /client-certificate: tls.crt/);
  });

  it('a deleted Secret is recreated, a modified one rewritten', async () => {
    await repairedWithin(
      5_000,
      async () => {
        await core().deleteNamespacedSecret({ namespace: 'default', name: secretName });
      },
      'secret',
    );
    const recreated = await core().readNamespacedSecret({ namespace: 'default', name: secretName });
    assert.ok((recreated.data?.config ?? '') !== '');
    await repairedWithin(
      5_000,
      async () => {
        await core().patchNamespacedSecret({
          namespace: 'default',
          name: secretName,
          body: [{ op: 'replace', path: '/data/config', value: Buffer.from('nonsense').toString('base64') }],
        });
      },
      'secret',
    );
    const rewritten = await core().readNamespacedSecret({ namespace: 'default', name: secretName });
    assert.match(Buffer.from(rewritten.data?.config ?? '', 'base64').toString(), /client-key-data/);
  });
});

describe('expired credentials', () => {
  it('an expired certificate falls back to the bootstrap token; with that expired too, re-bootstrap is needed until a new one is mounted', async () => {
    // An expired certificate for the identity, signed by the target's own CA, as if the pod had been down for a year.
    const prepared = await prepareTarget(target, { expiration: new Date(Date.now() - 60_000) });
    const ca = {
      cert: readFileSync(target.state.caCertFile, 'utf8'),
      key: readFileSync(target.state.caKeyFile, 'utf8'),
    };
    const expired = issueCertificate(
      ca,
      { commonName: prepared.identity.commonName, organizations: prepared.identity.organizations, usage: 'client' },
      new Date(Date.now() - 400 * 86_400_000),
    );
    await new DirectorySink({ path: outputDir(prepared), embed: false }).write({
      name: prepared.name,
      server: target.state.server,
      caPem: ca.cert,
      credential: { certPem: expired.cert, keyPem: expired.key },
    });
    const approver = new TestApprover(target.admin(), prepared.name);
    // No periodic re-read: the new bootstrap kubeconfig must be noticed through the ..data swap.
    const sidecar = startSidecar(
      writeSidecarConfig(prepared, { keyAlgorithm: 'rsa-2048', rereadIntervalSeconds: 3600 }),
    );
    try {
      const failure = await sidecar.waitForLog((line) => failed(line) && line.result === 'unauthorized');
      assert.equal(failure.authenticatedWith, 'bootstrap');
      await sidecar.waitForLog((line) => line.msg.startsWith('re-bootstrap needed'));
      assert.match(
        await metrics(sidecar),
        new RegExp(`kubeconfig_rotator_rebootstrap_needed\\{target="${prepared.name}"\\} 1`),
      );
      const ready = await fetch(`http://127.0.0.1:${String(await sidecar.port())}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /certificate expired at/);
      assert.equal(
        readOutput(prepared, 'tls.crt'),
        expired.cert,
        'the expired output stays until a new certificate exists',
      );

      // The operator runs bootstrap again: a new token arrives in the mounted file.
      const renewed = await createBootstrapToken(target.admin());
      await bindRenewals(target, prepared, renewed);
      writeKubeletMount(dirname(prepared.bootstrapKubeconfig), {
        kubeconfig: bootstrapKubeconfigFor(target, renewed.value),
      });
      secrets.push(renewed.token.secret);
      const done = await sidecar.waitForLog(rotated, 30_000);
      assert.equal(done.authenticatedWith, 'bootstrap');
      await sidecar.waitForLog((line) => line.msg === 're-bootstrap no longer needed');
      assert.match(
        await metrics(sidecar),
        new RegExp(`kubeconfig_rotator_rebootstrap_needed\\{target="${prepared.name}"\\} 0`),
      );
    } finally {
      remember(prepared);
      await sidecar.stop();
      await approver.stop();
    }
  });
});

describe('bad input at start', () => {
  it('a bad config exits 2 naming each field, and writes nothing', async () => {
    const prepared = await prepareTarget(target);
    const path = writeSidecarConfig(prepared);
    writeFileSync(
      path,
      readFileSync(path, 'utf8')
        .replace('expirationSeconds: 600', 'expirationSeconds: 60')
        .replace(/commonName: .*/, 'commonName: ""'),
    );
    const sidecar = startSidecar(path);
    const exit = await sidecar.exited;
    assert.equal(exit.code, 2);
    assert.match(sidecar.stderr, /targets\[0\]\.expirationSeconds: Too small: expected number to be >=600/);
    assert.match(sidecar.stderr, /targets\[0\]\.identity\.commonName: must be 1-253 printable characters/);
    assert.ok(!existsSync(outputDir(prepared)) && !existsSync(join(prepared.dir, 'state')), 'nothing written');
    remember(prepared);
  });

  it('a bad bootstrap kubeconfig exits 2 naming the file and the field, and writes nothing', async () => {
    const prepared = await prepareTarget(target);
    for (const [damage, field] of [
      [
        (text: string) => text.replace(/server: .*/, 'server: http://127.0.0.1:1'),
        /clusters\[target\]\.cluster\.server: must be an https URL/,
      ],
      [
        (text: string) => text.replace(/certificate-authority-data: .*/, 'insecure-skip-tls-verify: true'),
        /insecure-skip-tls-verify: must not be set/,
      ],
      [
        (text: string) => text.replace(/current-context: .*/, 'current-context: elsewhere'),
        /current-context: names context "elsewhere", which does not exist/,
      ],
      [(text: string) => text.replace(/token: .*/, 'username: nobody'), /users\[target\]\.user: has no credential/],
    ] as const) {
      const good = readFileSync(prepared.bootstrapKubeconfig, 'utf8');
      writeFileSync(prepared.bootstrapKubeconfig, damage(good));
      const sidecar = startSidecar(writeSidecarConfig(prepared));
      const exit = await sidecar.exited;
      writeFileSync(prepared.bootstrapKubeconfig, good);
      assert.equal(exit.code, 2, sidecar.stderr);
      assert.match(
        sidecar.stderr,
        new RegExp(`targets\\[0\\]\\.bootstrapKubeconfig: ${prepared.bootstrapKubeconfig.replaceAll('/', '\\/')}: `),
      );
      assert.match(sidecar.stderr, field);
    }
    assert.ok(!existsSync(outputDir(prepared)) && !existsSync(join(prepared.dir, 'state')), 'nothing written');
    remember(prepared);
  });
});

describe('configuration changes at run time', () => {
  it('a target added to the config starts without a restart; an invalid config is rejected and the old one keeps working', async () => {
    const first = await prepareTarget(target);
    const second = await prepareTarget(target);
    const approvers = [first, second].map((one) => new TestApprover(target.admin(), one.name));
    const configPath = writeSidecarConfig(first, { rereadIntervalSeconds: 3600 });
    const sidecar = startSidecar(configPath);
    try {
      await sidecar.waitForLog((line) => rotated(line) && line.target === first.name);
      const valid = readFileSync(writeSidecarConfig([first, second], { rereadIntervalSeconds: 3600 }), 'utf8');
      const added = await sidecar.waitForLog((line) => rotated(line) && line.target === second.name, 15_000);
      assert.equal(added.authenticatedWith, 'bootstrap');
      assert.ok(valid.includes(second.name));

      writeFileSync(configPath, valid.replace('expirationSeconds: 600', 'expirationSeconds: 5'));
      const rejected = await sidecar.waitForLog(
        (line) => line.msg === 'new configuration is invalid; keeping the current one',
        15_000,
      );
      assert.deepEqual(rejected.problems, [
        'targets[0].expirationSeconds: Too small: expected number to be >=600',
        'targets[0].rotation.minRemainingSeconds: must be less than expirationSeconds',
      ]);
      assert.match(await metrics(sidecar), /kubeconfig_rotator_config_reloads_total\{result="rejected"\} 1/);
      assert.match(await metrics(sidecar), /kubeconfig_rotator_config_reloads_total\{result="applied"\} 1/);
      const ready = await fetch(`http://127.0.0.1:${String(await sidecar.port())}/readyz`);
      assert.equal(ready.status, 200, 'both targets keep working under the old configuration');
    } finally {
      remember(first);
      remember(second);
      await sidecar.stop();
      await Promise.all(approvers.map((approver) => approver.stop()));
    }
  });
});
