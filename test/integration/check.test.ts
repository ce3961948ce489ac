// `kubeconfig-rotator check` and bootstrap's self-verification against real control planes, one test per
// failure mode, each asserting the exit code and that the message names the cause and the fix; and a healthy
// install (a real approver process leading its Lease, its policy in the chart's ConfigMap, a real bootstrap)
// where every check passes. The apiserver without bootstrap-token auth is a cluster of this file's own.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
  KubeConfig as ClientKubeConfig,
  V1MicroTime,
  type KubeConfig,
} from '@kubernetes/client-node';
import { BOOTSTRAP_SECRET_KEY, bootstrapGroup } from '../../src/core/bootstrap/plan.ts';
import { buildCertificationRequest } from '../../src/core/pki/csr.ts';
import { clientUsagesFor, generateKeyPair } from '../../src/core/pki/keys.ts';
import { renderKubeconfig } from '../../src/core/kubeconfig/render.ts';
import { clustersRoot, ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { KCM_CONTROLLERS, startClusters, stopCluster, type ClusterState } from '../../scripts/testbed/cluster.ts';
import { startLeadingApprover, type ApproverAccount, type ApproverProcess } from '../support/approver-process.ts';
import { clusterFromState, testCluster } from '../support/clusters.ts';
import { ensureMonitoringCrds } from '../support/chart-prerequisites.ts';
import { uniqueName } from '../support/kube.ts';
import { prepareTarget, sidecarTestFile, writeSidecarConfig } from '../support/sidecar.ts';

const execute = promisify(execFile);
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const target = testCluster('target');
const source = testCluster('source');
const dir = mkdtempSync(join(tmpdir(), 'kcr-check-it-'));
const { startSidecar, remember } = sidecarTestFile('check');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execute(process.execPath, [CLI, ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

interface Report {
  readonly ok: boolean;
  readonly checks: readonly { id: string; status: string; detail: string; fix?: string; docs?: string }[];
}

const report = (run: Run) => JSON.parse(run.stdout) as Report;
const only = (run: Run, id: string) => {
  const found = report(run).checks.filter((check) => check.id === id);
  assert.equal(found.length, 1, `one ${id} check in ${run.stdout}`);
  return found[0] ?? assert.fail();
};

/** What the chart would install, around a real approver process: its Deployment (status written as a kubelet
 * would: no node here runs its pod), and its policy in the chart's ConfigMap. */
async function installApprover(admin: KubeConfig, account: ApproverAccount, policy: string): Promise<void> {
  const { namespace, leaseName: name } = account;
  await admin.makeApiClient(CoreV1Api).createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: `${name}-policy` }, data: { 'policy.yaml': policy } },
  });
  const apps = admin.makeApiClient(AppsV1Api);
  const labels = { app: name };
  await apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'approver', image: 'approver:test' }] } },
      },
    },
  });
  const deployment = await apps.readNamespacedDeployment({ namespace, name });
  await apps.replaceNamespacedDeploymentStatus({
    namespace,
    name,
    body: { ...deployment, status: { replicas: 1, readyReplicas: 1, availableReplicas: 1 } },
  });
}

const policyFor = (sourceName: string, commonName: string) =>
  `policies:\n  - name: ${sourceName}\n    bootstrap: { groups: ['${bootstrapGroup(sourceName)}'] }\n    identity: { commonNames: ['${commonName}'] }\n`;

describe('kubeconfig-rotator check', () => {
  const sourceName = uniqueName('chk');
  const targetName = 'east';
  let account: ApproverAccount;
  let approver: ApproverProcess | undefined;
  const clusters = (targetKubeconfig = target.state.kubeconfig) => [
    '--source-name',
    sourceName,
    '--target-name',
    targetName,
    '--target-kubeconfig',
    targetKubeconfig,
    '--source-kubeconfig',
    source.state.kubeconfig,
  ];
  const approverFlags = () => ['--approver-namespace', account.namespace, '--approver-name', account.leaseName];

  before(async () => {
    ({ account, approver } = await startLeadingApprover(
      target,
      'kubernetes.io/kube-apiserver-client',
      dir,
      policyFor(sourceName, 'agent-west'),
    ));
    await installApprover(target.admin(), account, policyFor(sourceName, 'agent-west'));
  });

  after(async () => {
    await approver?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes every check of a healthy certificate install (after a real bootstrap, which verifies its token)', async (context) => {
    const bootstrap = await cli('bootstrap', ...clusters(), '--ttl', '10m');
    assert.equal(bootstrap.code, 0, bootstrap.stderr);
    // Where the Prometheus Operator's CRDs exist, the charts' PrometheusRule is there too (as the charts make it).
    await ensureMonitoringCrds([target, source]);
    for (const [cluster, namespace] of [
      [target, account.namespace],
      [source, 'kubeconfig-rotator'],
    ] as const)
      await cluster
        .admin()
        .makeApiClient(CustomObjectsApi)
        .createNamespacedCustomObject({
          group: 'monitoring.coreos.com',
          version: 'v1',
          namespace,
          plural: 'prometheusrules',
          body: {
            apiVersion: 'monitoring.coreos.com/v1',
            kind: 'PrometheusRule',
            metadata: { name: `kcr-${sourceName}`, labels: { 'app.kubernetes.io/part-of': 'kubeconfig-rotator' } },
            spec: { groups: [] },
          },
        });
    const run = await cli(
      'check',
      ...clusters(),
      ...approverFlags(),
      '--common-name',
      'agent-west',
      '--output',
      'json',
    );
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const { ok, checks } = report(run);
    assert.ok(ok);
    assert.deepEqual(
      checks.filter((check) => check.status !== 'pass'),
      [],
    );
    assert.deepEqual(
      [...new Set(checks.map((check) => check.id))],
      [
        'target.reachable',
        'target.version',
        'certificate.bootstrap-token',
        'certificate.signer',
        'certificate.approver',
        'certificate.leader',
        'certificate.policy',
        'certificate.other-approvers',
        'target.alerts',
        'source.reachable',
        'source.version',
        'source.alerts',
        'source.bootstrap-secret',
        'source.published-endpoint',
      ],
    );
    assert.match(only(run, 'certificate.policy').detail, new RegExp(`policy ${sourceName} approves`));
    assert.match(
      only(run, 'source.alerts').detail,
      new RegExp(`PrometheusRule .*kubeconfig-rotator/kcr-${sourceName}`),
    );
    // The check's own token is gone: only bootstrap's token of this source remains.
    const secrets = await target
      .admin()
      .makeApiClient(CoreV1Api)
      .listNamespacedSecret({ namespace: 'kube-system', labelSelector: 'kubeconfig-rotator.io/check=true' });
    assert.deepEqual(
      secrets.items.map((secret) => secret.metadata?.name),
      [],
    );
    const text = await cli('check', ...clusters(), ...approverFlags());
    // The report as a user reads it, in the test output.
    context.diagnostic(`check on a healthy install:\n${text.stdout}`);
    assert.equal(text.code, 0, text.stdout);
    assert.match(text.stdout, /\[ok\] {3}bootstrap tokens are accepted/);
    assert.match(text.stdout, / 0 warned, 0 failed\n$/);
  });

  it('fails a policy that denies the identity, naming the finding and the fix', async () => {
    const run = await cli('check', ...clusters(), ...approverFlags(), '--common-name', 'intruder', '--output', 'json');
    assert.equal(run.code, 1);
    const policy = only(run, 'certificate.policy');
    assert.equal(policy.status, 'fail');
    assert.match(policy.detail, /denies a first certificate for CN=intruder .*identity\.commonName/);
    assert.match(policy.fix ?? '', /allow CN=intruder in the policy/);
    assert.equal(policy.docs, 'docs/troubleshooting.md#certificate-policy');
  });

  it('fails an approver that is not installed, naming the helm install', async () => {
    const run = await cli('check', ...clusters(), '--approver-namespace', uniqueName('none'), '--pre');
    assert.equal(run.code, 1);
    assert.match(run.stdout, /\[FAIL\] the approver is installed and ready: no Deployment .*nothing approves/);
    assert.match(
      run.stdout,
      /fix: install the approver chart in the target \(helm install kubeconfig-rotator-approver/,
    );
    assert.match(run.stdout, /see: docs\/troubleshooting\.md#certificate-approver/);
    // --pre checks no bootstrap Secret: bootstrap has not run.
    assert.doesNotMatch(run.stdout, /bootstrap Secret/);
  });

  it('fails a Lease that no replica holds once the approver stops', async () => {
    await approver?.stop();
    approver = undefined;
    const run = await cli('check', ...clusters(), ...approverFlags(), '--output', 'json');
    assert.equal(run.code, 1);
    const leader = only(run, 'certificate.leader');
    assert.equal(leader.status, 'fail');
    assert.match(leader.detail, /held by no one|longer than its/);
    assert.match(leader.fix ?? '', /logs of deployment|logs deployment/);
  });

  it('fails a Lease whose holder stopped renewing it (a leader that lost the apiserver)', async () => {
    const { namespace, leaseName: name } = account;
    const leases = target.admin().makeApiClient(CoordinationV1Api);
    const lease = await leases.readNamespacedLease({ namespace, name });
    const duration = lease.spec?.leaseDurationSeconds ?? assert.fail('the approver wrote no duration');
    await leases.replaceNamespacedLease({
      namespace,
      name,
      body: {
        ...lease,
        spec: { ...lease.spec, holderIdentity: 'approver-gone', renewTime: new V1MicroTime(Date.now() - 120_000) },
      },
    });
    const run = await cli('check', ...clusters(), ...approverFlags(), '--output', 'json');
    assert.equal(run.code, 1);
    const leader = only(run, 'certificate.leader');
    assert.equal(leader.status, 'fail');
    assert.match(
      leader.detail,
      new RegExp(
        `approver-gone last renewed Lease .* 1[2-9]\\d s ago, longer than its ${String(duration)} s duration: no replica is leading`,
      ),
    );
  });

  it("fails an injector webhook the apiserver cannot call, with the apiserver's own error", async () => {
    // The chart's webhook (its labels) pointing at a Service that does not exist, for namespaces of one label.
    const label = uniqueName('inject');
    const namespace = uniqueName('kcr-agents');
    const name = uniqueName('kcr-check-injector');
    const admin = source.admin();
    const webhooks = admin.makeApiClient(AdmissionregistrationV1Api);
    await admin
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: namespace, labels: { 'kcr-check-inject': label } } } });
    await webhooks.createMutatingWebhookConfiguration({
      body: {
        metadata: {
          name,
          labels: { 'app.kubernetes.io/component': 'injector', 'app.kubernetes.io/part-of': 'kubeconfig-rotator' },
        },
        webhooks: [
          {
            name: 'inject.kubeconfig-rotator.io',
            clientConfig: {
              service: { namespace, name: 'no-such-injector', path: '/mutate', port: 443 },
              caBundle: Buffer.from(readFileSync(source.state.caCertFile, 'utf8')).toString('base64'),
            },
            rules: [
              {
                apiGroups: [''],
                apiVersions: ['v1'],
                operations: ['CREATE'],
                resources: ['pods'],
                scope: 'Namespaced',
              },
            ],
            failurePolicy: 'Fail',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            namespaceSelector: { matchLabels: { 'kcr-check-inject': label } },
          },
        ],
      },
    });
    try {
      const run = await cli('check', ...clusters(), ...approverFlags(), '--output', 'json');
      assert.equal(run.code, 1);
      const webhook = only(run, 'source.injector-webhook');
      assert.equal(webhook.status, 'fail');
      assert.match(
        webhook.detail,
        new RegExp(
          `the apiserver could not call it for a dry-run pod in ${namespace}: .*failed calling webhook .*no-such-injector`,
        ),
      );
      assert.match(webhook.fix ?? '', /endpoints; its serving certificate/);
      assert.equal(webhook.docs, 'docs/troubleshooting.md#source-injector-webhook');
      // A dry run: no pod was created.
      const pods = await admin.makeApiClient(CoreV1Api).listNamespacedPod({ namespace });
      assert.deepEqual(pods.items, []);
    } finally {
      await webhooks.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
      await admin
        .makeApiClient(CoreV1Api)
        .deleteNamespace({ name: namespace })
        .catch(() => undefined);
    }
  });

  it("fails a CSR of this source that another approver approved, naming the CSR and the condition's reason", async () => {
    // The approver is stopped (above): a CSR made with the source's bootstrap token, approved by someone else.
    const secret = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: 'kubeconfig-rotator', name: `kubeconfig-rotator-bootstrap-${targetName}` });
    const bootstrapKubeconfig = new ClientKubeConfig();
    bootstrapKubeconfig.loadFromString(
      Buffer.from(secret.data?.[BOOTSTRAP_SECRET_KEY] ?? assert.fail('no bootstrap kubeconfig'), 'base64').toString(),
    );
    const name = uniqueName('foreign');
    const request = buildCertificationRequest(
      { commonName: 'agent-west', organizations: [] },
      generateKeyPair('ecdsa-p256'),
    );
    await bootstrapKubeconfig.makeApiClient(CertificatesV1Api).createCertificateSigningRequest({
      body: {
        metadata: { name },
        spec: {
          signerName: 'kubernetes.io/kube-apiserver-client',
          request: Buffer.from(request).toString('base64'),
          usages: clientUsagesFor('ecdsa-p256'),
          expirationSeconds: 600,
        },
      },
    });
    const csrs = target.admin().makeApiClient(CertificatesV1Api);
    try {
      const created = await csrs.readCertificateSigningRequest({ name });
      await csrs.replaceCertificateSigningRequestApproval({
        name,
        body: {
          ...created,
          status: {
            conditions: [
              { type: 'Approved', status: 'True', reason: 'AutoApproved', message: 'approved by a test auto-approver' },
            ],
          },
        },
      });
      const run = await cli('check', ...clusters(), ...approverFlags(), '--output', 'json');
      assert.equal(run.code, 1);
      const others = only(run, 'certificate.other-approvers');
      assert.equal(others.status, 'fail');
      assert.match(
        others.detail,
        new RegExp(
          `1 CSR\\(s\\) of source ${sourceName} decided by another approver: ${name} Approved with reason "AutoApproved" \\(approved by a test auto-approver\\)`,
        ),
      );
      assert.match(others.fix ?? '', /remove or scope the other approver/);
      assert.equal(others.docs, 'docs/troubleshooting.md#certificate-other-approvers');
    } finally {
      await csrs.deleteCertificateSigningRequest({ name }).catch(() => undefined);
    }
  });

  for (const [name, change, cause] of [
    [
      'a CA that did not sign the target',
      { caPem: readFileSync(source.state.caCertFile, 'utf8') },
      /does not verify with the kubeconfig's CA: .*(certificate|CERT)/,
    ],
    [
      'a server name the target certificate is not for',
      { tlsServerName: 'wrong.example' },
      /does not verify with the kubeconfig's CA for name wrong\.example: .*(altnames|ALTNAME)/i,
    ],
  ] as const)
    it(`fails a bootstrap kubeconfig with ${name}, naming the cause and the re-run of bootstrap`, async () => {
      const secretName = uniqueName('kcr-bad-endpoint');
      const kubeconfig = renderKubeconfig({
        name: targetName,
        server: target.state.server,
        certificateAuthority: { pem: 'caPem' in change ? change.caPem : readFileSync(target.state.caCertFile, 'utf8') },
        tlsServerName: 'tlsServerName' in change ? change.tlsServerName : undefined,
        credential: { token: 'abcdef.0123456789abcdef' },
      });
      await source
        .admin()
        .makeApiClient(CoreV1Api)
        .createNamespacedSecret({
          namespace: 'kubeconfig-rotator',
          body: { metadata: { name: secretName }, data: { kubeconfig: Buffer.from(kubeconfig).toString('base64') } },
        });
      const run = await cli(
        'check',
        ...clusters(),
        ...approverFlags(),
        '--secret-name',
        secretName,
        '--output',
        'json',
      );
      assert.equal(run.code, 1);
      const found = only(run, 'source.published-endpoint');
      assert.equal(found.status, 'fail');
      assert.match(found.detail, cause);
      assert.match(found.fix ?? '', /run bootstrap again/);
    });

  it("fails a federated target that does not trust the source's issuer, naming bootstrap --credential federated", async () => {
    const namespace = uniqueName('kcr-fed');
    const core = source.admin().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'agent' } } });
    const federated = [...clusters(), '--credential', 'federated', '--output', 'json'];
    const run = await cli('check', ...federated, '--service-account', `${namespace}/agent`);
    assert.equal(run.code, 1);
    const trust = only(run, 'federated.issuer-trust');
    assert.equal(trust.status, 'fail');
    assert.match(
      trust.detail,
      new RegExp(`refused a token of ${namespace}/agent for audience kubeconfig-rotator:east \\(401\\)`),
    );
    assert.match(trust.fix ?? '', /bootstrap --credential federated/);
    // Without a ServiceAccount it is not checked, and says so: a warning, never a pass.
    const unasked = await cli('check', ...federated);
    assert.equal(only(unasked, 'federated.issuer-trust').status, 'warn');
  });

  it('fails a token target without the guardrail, naming it and the bootstrap that restores it', async () => {
    const tokenSource = uniqueName('chk-tok');
    const args = [
      '--source-name',
      tokenSource,
      '--target-name',
      targetName,
      '--target-kubeconfig',
      target.state.kubeconfig,
      '--source-kubeconfig',
      source.state.kubeconfig,
      '--credential',
      'token',
      '--secret-name',
      `kcr-bootstrap-${tokenSource}`,
    ];
    const bootstrap = await cli('bootstrap', ...args, '--ttl', '10m');
    assert.equal(bootstrap.code, 0, bootstrap.stderr);
    const healthy = await cli('check', ...args, '--output', 'json');
    assert.equal(healthy.code, 0, healthy.stdout);
    const guardrail = `kcr-token-guardrail.${tokenSource}.kubeconfig-rotator`;
    await target
      .admin()
      .makeApiClient(AdmissionregistrationV1Api)
      .deleteValidatingAdmissionPolicyBinding({ name: guardrail });
    const run = await cli('check', ...args, '--output', 'json');
    assert.equal(run.code, 1);
    const found = only(run, 'token.guardrail');
    assert.equal(found.status, 'fail');
    assert.match(found.detail, new RegExp(`no ValidatingAdmissionPolicyBinding ${guardrail.replaceAll('.', '\\.')}`));
    assert.match(found.fix ?? '', /bootstrap --credential token/);
    assert.equal(only(run, 'token.token-request').status, 'pass');
  });
});

describe('a target whose apiserver does not accept bootstrap tokens, and which signs no client certificates', () => {
  const name = uniqueName('nobtok');
  let cluster: ClusterState | undefined;
  const sourceName = uniqueName('chk-nb');

  before(async () => {
    [cluster] = await startClusters([name], {
      binDir: await ensureControlPlane(),
      root: clustersRoot(),
      // The last value of a repeated flag wins: this turns off the testbed's --enable-bootstrap-token-auth.
      apiserverFlags: () => ['--enable-bootstrap-token-auth=false'],
      // No csrsigning: approved CSRs are never signed, as on a target that issues no client certificates.
      controllers: KCM_CONTROLLERS.filter((controller) => controller !== 'csrsigning'),
    });
  });

  after(async () => {
    await stopCluster(clustersRoot(), name);
  });

  const args = () => [
    '--source-name',
    sourceName,
    '--target-name',
    'managed',
    '--target-kubeconfig',
    cluster?.kubeconfig ?? assert.fail(),
    '--source-kubeconfig',
    source.state.kubeconfig,
  ];

  it('check --pre fails, naming --enable-bootstrap-token-auth, the missing signer (within its bound) and the token and federated alternatives', async (context) => {
    const started = Date.now();
    const run = await cli('check', ...args(), '--pre');
    context.diagnostic(`check --pre on a target without bootstrap-token auth or a signer:\n${run.stdout}`);
    assert.equal(run.code, 1);
    assert.match(
      run.stdout,
      /\[FAIL\] bootstrap tokens are accepted: the target refused a valid bootstrap token \(401/,
    );
    assert.match(run.stdout, /fix: start the target's kube-apiserver with --enable-bootstrap-token-auth/);
    assert.match(run.stdout, /use --credential token or --credential federated instead/);
    assert.match(run.stdout, /see: docs\/troubleshooting\.md#certificate-bootstrap-token/);
    // The signer check waited its bound (30 s) and no longer.
    assert.match(
      run.stdout,
      /\[FAIL\] the kubernetes\.io\/kube-apiserver-client signer issues certificates: a CSR the check approved was not signed within 30\.0 s/,
    );
    assert.match(
      run.stdout,
      /fix: enable kube-controller-manager's csrsigning controller .*use --credential token or --credential federated/,
    );
    assert.ok(Date.now() - started < 60_000, `check took ${String(Date.now() - started)} ms`);
    const csrs = await clusterFromState(cluster ?? assert.fail())
      .admin()
      .makeApiClient(CertificatesV1Api)
      .listCertificateSigningRequest({ labelSelector: 'kubeconfig-rotator.io/check=true' });
    assert.equal(csrs.items.length, 0, 'the check CSR is deleted');
    // A token target needs no bootstrap tokens: the same cluster passes --pre for it.
    const tokenRun = await cli('check', ...args(), '--pre', '--credential', 'token');
    assert.equal(tokenRun.code, 0, tokenRun.stdout);
  });

  it('bootstrap exits non-zero there, names the cause, what it created and how to remove it, and writes no source Secret', async () => {
    const run = await cli('bootstrap', ...args(), '--ttl', '10m');
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stderr, /does not accept bootstrap tokens/);
    assert.match(run.stderr, /--enable-bootstrap-token-auth/);
    assert.match(run.stderr, /--credential token or --credential federated/);
    const token = /Secret kube-system\/(bootstrap-token-[a-z0-9]{6})/.exec(run.stderr)?.[1] ?? assert.fail(run.stderr);
    assert.match(run.stderr, new RegExp(`kubectl delete secret --namespace kube-system ${token}`));
    assert.match(
      run.stderr,
      new RegExp(`kubectl delete clusterrolebinding kubeconfig-rotator:bootstrap:${sourceName}`),
    );
    assert.doesNotMatch(run.stdout, /holds the bootstrap kubeconfig/);
    const admin = clusterFromState(cluster ?? assert.fail()).admin();
    // What it says it created is there (for the operator to remove), and nothing reached the source.
    await admin.makeApiClient(CoreV1Api).readNamespacedSecret({ namespace: 'kube-system', name: token });
    await admin
      .makeApiClient(RbacAuthorizationV1Api)
      .readClusterRoleBinding({ name: `kubeconfig-rotator:bootstrap:${sourceName}` });
    const sourceSecrets = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .listSecretForAllNamespaces({ labelSelector: `kubeconfig-rotator.io/source=${sourceName}` });
    assert.equal(sourceSecrets.items.length, 0);
  });

  it('a sidecar given a bootstrap token there says, in its log and /readyz, that the token was refused before any certificate, its likely causes and check', async () => {
    const prepared = await prepareTarget(clusterFromState(cluster ?? assert.fail()));
    remember(prepared);
    const config = writeSidecarConfig(prepared, { sourceKubeconfig: source.state.kubeconfig });
    const sidecar = startSidecar(config);
    const line = await sidecar.waitForLog((entry) => entry.msg.startsWith('re-bootstrap needed'));
    assert.equal(line.reason, 'BootstrapRefused');
    assert.match(line.msg, /no certificate was ever issued and the target refuses the bootstrap credential/);
    assert.match(line.msg, /--enable-bootstrap-token-auth.*run kubeconfig-rotator check/);
    assert.match(String(line.error), /401/);
    const ready = await fetch(`http://127.0.0.1:${String(await sidecar.port())}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /--enable-bootstrap-token-auth.*run kubeconfig-rotator check/);
  });

  it("check --config, with that sidecar's config: the bootstrap credential refused, nothing published, the likely causes", async (context) => {
    const prepared = await prepareTarget(clusterFromState(cluster ?? assert.fail()));
    remember(prepared);
    const config = writeSidecarConfig(prepared, { sourceKubeconfig: source.state.kubeconfig });
    const text = await cli('check', '--config', config);
    context.diagnostic(`check --config of a sidecar whose target refuses bootstrap tokens:\n${text.stdout}`);
    assert.equal(text.code, 1, text.stdout + text.stderr);
    const run = await cli('check', '--config', config, '--output', 'json');
    assert.equal(only(run, 'sidecar.target-endpoint').status, 'pass');
    const refused = only(run, 'sidecar.bootstrap-credential');
    assert.equal(refused.status, 'fail');
    assert.match(
      refused.detail,
      /refuses it \(401\) and no valid certificate is published: .*--enable-bootstrap-token-auth/,
    );
    assert.match(refused.fix ?? '', /kubeconfig-rotator check --source-name/);
    assert.equal(refused.docs, 'docs/troubleshooting.md#sidecar-bootstrap-credential');
    // The sidecar never ran with this config: its directory sink holds nothing.
    assert.match(only(run, 'sidecar.published').detail, /nothing published yet/);
  });
});
