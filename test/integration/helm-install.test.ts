// Both charts installed with helm into the test clusters; then the approver runs with a token of the
// approver chart's ServiceAccount and the sidecar with the sidecar chart's, on the config and policy the
// charts rendered. A bootstrap -> first certificate -> renewal cycle proves the charts' RBAC is enough;
// requests the charts should not allow prove it is no more than needed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { AdmissionregistrationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { renderKubeconfig } from '../../src/core/kubeconfig/render.ts';
import { ensureControlPlane, REPO_ROOT } from '../../scripts/testbed/binaries.ts';
import { CliProcess } from '../../scripts/testbed/cli-process.ts';
import { writeKubeletMount } from '../../scripts/testbed/mount.ts';
import { kubeConfigFor } from '../support/kubeconfig.ts';
import { testCluster, type TestCluster } from '../support/clusters.ts';
import { eventually, statusCode, uniqueName } from '../support/kube.ts';
import { assertNoSecretsInLogs } from '../support/log-hygiene.ts';
import { rotated, scratchDir } from '../support/sidecar.ts';

const execute = promisify(execFile);
const target = testCluster('target');
const source = testCluster('source');
const scratch = scratchDir('helm-install');
const sourceName = uniqueName('src');
const namespace = uniqueName('kcr');
const identity = `kcr-agent-${sourceName}`;
const release = { approver: `a-${sourceName}`, sidecar: `s-${sourceName}` };
const processes: CliProcess[] = [];
const secrets: string[] = [];
let bin = '';

const helm = (cluster: TestCluster, ...args: string[]) =>
  execute(join(bin, 'helm'), ['--kubeconfig', cluster.state.kubeconfig, ...args]);
const kubectl = (cluster: TestCluster, ...args: string[]) =>
  execute(join(bin, 'kubectl'), ['--kubeconfig', cluster.state.kubeconfig, ...args]);

/** A kubeconfig holding a token of the ServiceAccount a chart made, as its pods would hold. */
async function serviceAccountKubeconfig(
  cluster: TestCluster,
  serviceAccount: string,
  file: string,
): Promise<{ path: string; kubeConfig: KubeConfig }> {
  const { stdout } = await kubectl(
    cluster,
    'create',
    'token',
    serviceAccount,
    '--namespace',
    namespace,
    '--duration',
    '1h',
  );
  const token = stdout.trim();
  secrets.push(token);
  const path = join(scratch.path, file);
  writeFileSync(
    path,
    renderKubeconfig({
      name: 'cluster',
      server: cluster.state.server,
      certificateAuthority: { file: cluster.state.caCertFile },
      credential: { token },
    }),
    { mode: 0o600 },
  );
  return {
    path,
    kubeConfig: kubeConfigFor(cluster.endpoint(), { token }),
  };
}

async function configMapData(cluster: TestCluster, name: string, key: string): Promise<string> {
  const configMap = await cluster.admin().makeApiClient(CoreV1Api).readNamespacedConfigMap({ namespace, name });
  return configMap.data?.[key] ?? assert.fail(`ConfigMap ${name} has no ${key}`);
}

before(async () => {
  bin = await ensureControlPlane();
  const approverValues = join(scratch.path, 'approver.yaml');
  writeFileSync(
    approverValues,
    stringify({
      sources: [
        {
          name: sourceName,
          identity: { commonNames: [identity], organizations: ['kcr-agents'] },
          maxExpirationSeconds: 3600,
          clusterRoles: ['view'],
        },
      ],
    }),
  );
  await helm(
    target,
    'install',
    release.approver,
    join(REPO_ROOT, 'charts', 'kubeconfig-rotator-approver'),
    '--namespace',
    namespace,
    '--create-namespace',
    '-f',
    approverValues,
  );
  const sidecarValues = join(scratch.path, 'sidecar.yaml');
  writeFileSync(
    sidecarValues,
    stringify({
      targets: [
        {
          name: 'east',
          bootstrapSecret: { name: 'kubeconfig-rotator-bootstrap-east' },
          identity: { commonName: identity, organizations: ['kcr-agents'] },
          expirationSeconds: 600,
          rotation: { minRemainingSeconds: 60, forceIntervalSeconds: 3 },
          sinks: { secret: { name: 'east-kubeconfig' } },
        },
      ],
      injector: {
        enabled: true,
        agentServiceAccounts: [{ namespace, name: 'agent', referenceSecrets: ['agent-kubeconfig'] }],
      },
    }),
  );
  await helm(
    source,
    'install',
    release.sidecar,
    join(REPO_ROOT, 'charts', 'kubeconfig-rotator-sidecar'),
    '--namespace',
    namespace,
    '--create-namespace',
    '-f',
    sidecarValues,
  );
  const cli = join(REPO_ROOT, 'src', 'cli.ts');
  await execute(process.execPath, [
    cli,
    'bootstrap',
    '--source-name',
    sourceName,
    '--target-name',
    'east',
    '--namespace',
    namespace,
    '--target-kubeconfig',
    target.state.kubeconfig,
    '--source-kubeconfig',
    source.state.kubeconfig,
  ]);
});

after(async () => {
  await Promise.all(processes.map((child) => child.stop('SIGKILL')));
  assertNoSecretsInLogs(
    processes.map((child, index) => {
      const file = join(scratch.path, `process-${String(index)}.log`);
      writeFileSync(file, child.lines.map((line) => JSON.stringify(line)).join('\n') + child.stderr);
      return file;
    }),
    secrets,
  );
  await helm(target, 'uninstall', release.approver, '--namespace', namespace).catch(() => undefined);
  await helm(source, 'uninstall', release.sidecar, '--namespace', namespace).catch(() => undefined);
  scratch.dispose();
});

describe('the charts, installed with helm, with their own ServiceAccounts', () => {
  it("bootstrap -> first certificate -> renewal, with the approver and the sidecar running as the charts' ServiceAccounts", async () => {
    const approverName = `${release.approver}-kubeconfig-rotator-approver`;
    const approverAccount = await serviceAccountKubeconfig(target, approverName, 'approver.kubeconfig');
    const policy = join(scratch.path, 'policy.yaml');
    writeFileSync(policy, await configMapData(target, `${approverName}-policy`, 'policy.yaml'));
    const approver = new CliProcess(
      [
        'approver',
        '--policy',
        policy,
        '--kubeconfig',
        approverAccount.path,
        '--lease-namespace',
        namespace,
        '--lease-name',
        approverName,
        '--listen',
        '127.0.0.1:0',
      ],
      { label: 'approver' },
    );
    processes.push(approver);
    await approver.port();

    // The sidecar's config as the chart rendered it, with the pod's paths mapped to this machine.
    const sidecarName = `${release.sidecar}-kubeconfig-rotator-sidecar`;
    const sidecarAccount = await serviceAccountKubeconfig(source, sidecarName, 'sidecar.kubeconfig');
    const config = parse(await configMapData(source, sidecarName, 'config.yaml')) as {
      targets: { bootstrapKubeconfig: string }[];
      stateDir: string;
      listen: { port: number };
      sourceKubeconfig?: string;
    };
    const bootstrap = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace, name: 'kubeconfig-rotator-bootstrap-east' });
    const mount = join(scratch.path, 'bootstrap', 'east');
    writeKubeletMount(mount, { kubeconfig: Buffer.from(bootstrap.data?.kubeconfig ?? '', 'base64').toString() });
    assert.equal(config.targets[0]?.bootstrapKubeconfig, '/var/run/kubeconfig-rotator/bootstrap/east/kubeconfig');
    config.targets[0] = { ...config.targets[0], bootstrapKubeconfig: join(mount, 'kubeconfig') };
    config.stateDir = join(scratch.path, 'state');
    config.listen.port = 0;
    config.sourceKubeconfig = sidecarAccount.path;
    const configPath = join(scratch.path, 'config.yaml');
    writeFileSync(configPath, stringify(config));
    // A Pod object for the events (nothing runs pods in the test clusters).
    const pod = uniqueName('agent');
    await eventually(() =>
      source
        .admin()
        .makeApiClient(CoreV1Api)
        .createNamespacedPod({
          namespace,
          body: { metadata: { name: pod }, spec: { containers: [{ name: 'agent', image: 'agent:test' }] } },
        }),
    );
    const sidecar = new CliProcess(['sidecar', '--config', configPath], {
      label: 'sidecar',
      env: { POD_NAME: pod, POD_NAMESPACE: namespace },
    });
    processes.push(sidecar);

    const first = await sidecar.waitForLog(rotated, 60_000);
    assert.equal(first.authenticatedWith, 'bootstrap');
    const renewal = await sidecar.waitForLog((line) => rotated(line) && line.authenticatedWith === 'current', 30_000);
    assert.notEqual(renewal.serial, first.serial);
    const decisions = approver.lines.filter((line) => line.msg === 'decision written');
    assert.ok(decisions.length >= 2, 'the approver decided both');

    // The published Secret works as the identity, with the RBAC the chart bound to it.
    const published = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace, name: 'east-kubeconfig' });
    const kubeconfigFile = join(scratch.path, 'published.kubeconfig');
    writeFileSync(kubeconfigFile, Buffer.from(published.data?.config ?? '', 'base64'), { mode: 0o600 });
    secrets.push(Buffer.from(published.data?.['tls.key'] ?? '', 'base64').toString());
    const { stdout } = await kubectl(
      target,
      '--kubeconfig',
      kubeconfigFile,
      'auth',
      'whoami',
      '-o',
      'jsonpath={.status.userInfo.username}',
    );
    assert.equal(stdout, identity);
    const canView = await execute(join(bin, 'kubectl'), [
      '--kubeconfig',
      kubeconfigFile,
      'auth',
      'can-i',
      'list',
      'configmaps',
      '--all-namespaces',
    ]);
    assert.equal(canView.stdout.trim(), 'yes');

    // Events on the pod: the chart's events Role is enough.
    await eventually(async () => {
      const events = await source
        .admin()
        .makeApiClient(CoreV1Api)
        .listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${pod}` });
      assert.ok(
        events.items.some((event) => event.reason === 'CertificateRotated'),
        'a CertificateRotated event',
      );
    });
  });

  it('and no more than needed: the approver cannot read Secrets, the sidecar only its own output Secrets', async () => {
    const approver = await serviceAccountKubeconfig(
      target,
      `${release.approver}-kubeconfig-rotator-approver`,
      'approver-2.kubeconfig',
    );
    const approverCore = approver.kubeConfig.makeApiClient(CoreV1Api);
    await assert.rejects(approverCore.listSecretForAllNamespaces(), (error) => statusCode(error) === 403);
    await assert.rejects(
      approverCore.listNamespacedSecret({ namespace: 'kube-system' }),
      (error) => statusCode(error) === 403,
    );
    await assert.rejects(approverCore.listNamespacedPod({ namespace }), (error) => statusCode(error) === 403);

    const sidecar = await serviceAccountKubeconfig(
      source,
      `${release.sidecar}-kubeconfig-rotator-sidecar`,
      'sidecar-2.kubeconfig',
    );
    const sidecarCore = sidecar.kubeConfig.makeApiClient(CoreV1Api);
    await sidecarCore.readNamespacedSecret({ namespace, name: 'east-kubeconfig' });
    await assert.rejects(
      sidecarCore.readNamespacedSecret({ namespace, name: 'kubeconfig-rotator-bootstrap-east' }),
      (error) => statusCode(error) === 403,
    );
    await assert.rejects(sidecarCore.listNamespacedSecret({ namespace }), (error) => statusCode(error) === 403);
    await assert.rejects(
      sidecarCore.listNamespacedSecret({ namespace: 'kube-system' }),
      (error) => statusCode(error) === 403,
    );
  });

  it("injected sidecars, as the agent's ServiceAccount listed in injector.agentServiceAccounts, may create Events in its namespace and write its reference Secret, nothing more", async () => {
    const canI = async (...request: string[]) =>
      (
        await kubectl(source, 'auth', 'can-i', ...request, '--as', `system:serviceaccount:${namespace}:agent`).catch(
          (error: unknown) => error as { stdout: string },
        )
      ).stdout.trim();
    assert.equal(await canI('create', 'events', '-n', namespace), 'yes');
    assert.equal(await canI('create', 'events', '-n', 'kube-system'), 'no');
    assert.equal(await canI('update', 'secrets/agent-kubeconfig', '-n', namespace), 'yes');
    assert.equal(await canI('update', 'secrets/east-kubeconfig', '-n', namespace), 'no');
    assert.equal(await canI('get', 'secrets/kubeconfig-rotator-bootstrap-east', '-n', namespace), 'no');
  });

  it("the injector, as its ServiceAccount, creates its CA and publishes the caBundle into the chart's webhook, and reads no other Secret", async () => {
    const name = `${release.sidecar}-kubeconfig-rotator-sidecar-injector`;
    const account = await serviceAccountKubeconfig(source, name, 'injector.kubeconfig');
    const config = parse(await configMapData(source, name, 'injector.yaml')) as {
      listen: Record<string, unknown>;
      probes: Record<string, unknown>;
    };
    config.listen = { host: '127.0.0.1', port: 0 };
    config.probes = { host: '127.0.0.1', port: 0 };
    const configPath = join(scratch.path, 'injector.yaml');
    writeFileSync(configPath, stringify(config));
    const injector = new CliProcess(['injector', '--config', configPath, '--kubeconfig', account.path], {
      label: 'injector',
    });
    processes.push(injector);
    await injector.waitForLog((line) => line.msg === 'injector started');
    const webhook = await source
      .admin()
      .makeApiClient(AdmissionregistrationV1Api)
      .readMutatingWebhookConfiguration({ name });
    const bundle = Buffer.from(webhook.webhooks?.[0]?.clientConfig.caBundle ?? '', 'base64').toString();
    assert.match(bundle, /^-----BEGIN CERTIFICATE-----/);
    const ca = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace, name: `${name}-ca` });
    assert.equal(Buffer.from(ca.data?.['ca.crt'] ?? '', 'base64').toString(), bundle);
    secrets.push(Buffer.from(ca.data?.['ca.key'] ?? '', 'base64').toString());
    const injectorCore = account.kubeConfig.makeApiClient(CoreV1Api);
    await assert.rejects(
      injectorCore.readNamespacedSecret({ namespace, name: 'kubeconfig-rotator-bootstrap-east' }),
      (error) => statusCode(error) === 403,
    );
    await assert.rejects(injectorCore.listNamespacedSecret({ namespace }), (error) => statusCode(error) === 403);
    await injector.stop();
  });
});
