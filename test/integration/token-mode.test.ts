// Token targets end to end on the two test clusters: `bootstrap --credential token` makes the ServiceAccount,
// its lease Secret, the guardrail policy and a first token; the sidecar renews with its own tokens, publishes
// them by tokenFile and in a Secret, reuses a valid one after a restart; the guardrail refuses what a leaked
// token should not mint; `revoke` deletes the lease Secret (every token refused at once), the sidecar reports
// re-bootstrap until a new bootstrap restores it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { tokenIdentity, tokenRequestBody } from '../../src/core/bootstrap/token-plan.ts';
import { describeError } from '../../src/io/kube/errors.ts';
import { ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { parseMetrics, sampleValue } from '../../scripts/testbed/metrics.ts';
import { testCluster } from '../support/clusters.ts';
import { eventually, kubectlWhoAmI, uniqueName } from '../support/kube.ts';
import {
  sidecarTestFile,
  tokenRotated,
  writeKubeletMount,
  writeTargetsConfig,
  type LogLine,
  type SidecarProcess,
} from '../support/sidecar.ts';
import { mountBootstrapSecret, tokenOf } from '../support/token-target.ts';

const execute = promisify(execFile);
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const target = testCluster('target');
const source = testCluster('source');
const { scratch, secrets, startSidecar } = sidecarTestFile('token-mode');

describe('token mode', () => {
  const sourceName = uniqueName('tok');
  const targetNamespace = uniqueName('kcr-tokens');
  const identity = tokenIdentity(sourceName, targetNamespace);
  const user = `system:serviceaccount:${targetNamespace}:${identity.serviceAccount}`;
  const secretName = `kcr-token-${sourceName}`;
  let dir = '';
  let config = '';
  let kubectl = '';
  let sidecar: SidecarProcess;

  const bootstrap = () =>
    execute(process.execPath, [
      CLI,
      'bootstrap',
      '--credential',
      'token',
      '--source-name',
      sourceName,
      '--target-name',
      'east',
      '--target-kubeconfig',
      target.state.kubeconfig,
      '--source-kubeconfig',
      source.state.kubeconfig,
      '--namespace',
      'default',
      '--target-namespace',
      targetNamespace,
      '--secret-name',
      `${secretName}-bootstrap`,
      '--ttl',
      '10m',
      '--max-token-ttl',
      '30m',
    ]);
  const revoke = (source = sourceName) =>
    execute(process.execPath, [
      CLI,
      'revoke',
      '--source-name',
      source,
      '--target-kubeconfig',
      target.state.kubeconfig,
      '--target-namespace',
      targetNamespace,
    ]);

  async function mountBootstrap(): Promise<string> {
    const kubeconfig = await mountBootstrapSecret(
      source,
      { namespace: 'default', name: `${secretName}-bootstrap` },
      join(dir, 'bootstrap'),
    );
    secrets.push(tokenOf(kubeconfig));
    return kubeconfig;
  }
  let bootstrapKubeconfig = '';
  /** A kubeconfig embedding the sidecar's current token (client-node resolves no relative tokenFile). */
  let fromSecret = '';

  const whoAmI = (kubeconfig: string) => kubectlWhoAmI(kubectl, kubeconfig);
  const published = () => join(dir, 'out', 'kubeconfig');
  const rememberToken = () => {
    secrets.push(readFileSync(join(dir, 'out', 'token'), 'utf8'));
  };
  const metrics = async () =>
    parseMetrics(await (await fetch(`http://127.0.0.1:${String(await sidecar.port())}/metrics`)).text());

  before(async () => {
    kubectl = join(await ensureControlPlane(), 'kubectl');
    dir = mkdtempSync(join(scratch.path, 'target-'));
    const { stdout } = await bootstrap();
    assert.match(stdout, new RegExp(`ServiceAccount ${targetNamespace}/${identity.serviceAccount}`));
    bootstrapKubeconfig = await mountBootstrap();
    config = join(dir, 'config.yaml');
    writeConfig({ minRemainingSeconds: 60, forceIntervalSeconds: 3 });
  });
  /** Forced renewals every few seconds, or (for revocation) none soon: only the periodic check can notice. */
  function writeConfig(rotation: object, revocationCheckSeconds?: number) {
    writeTargetsConfig(dir, source.state.kubeconfig, [
      {
        name: 'east',
        bootstrapKubeconfig: join(dir, 'bootstrap', 'kubeconfig'),
        credential: 'token',
        serviceAccount: { namespace: targetNamespace, name: identity.serviceAccount },
        expirationSeconds: 600,
        rotation,
        ...(revocationCheckSeconds === undefined ? {} : { revocationCheckSeconds }),
        sinks: { directory: { path: join(dir, 'out') }, secret: { namespace: 'default', name: secretName } },
      },
    ]);
  }
  after(async () => {
    await sidecar.stop();
    await target.admin().makeApiClient(CoreV1Api).deleteNamespace({ name: targetNamespace });
  });

  it('gets a first token with the bootstrap token, then renews with its own, published by tokenFile and in the Secret', async () => {
    sidecar = startSidecar(config);
    const first = await sidecar.waitForLog(tokenRotated, 60_000);
    assert.equal(first.authenticatedWith, 'bootstrap');
    assert.equal(first.subject, user);
    rememberToken();
    const kubeconfig = readFileSync(published(), 'utf8');
    assert.match(kubeconfig, /tokenFile: token/);
    assert.equal(statSync(join(dir, 'out', 'token')).mode & 0o777, 0o600);
    assert.equal(await whoAmI(published()), user);

    // The bootstrap token goes bad (the target refuses it): renewals never need it.
    const refused = bootstrapKubeconfig.replace(/token: \S+/, 'token: bogus');
    assert.notEqual(refused, bootstrapKubeconfig);
    writeKubeletMount(join(dir, 'bootstrap'), { kubeconfig: refused });
    const renewals = (line: LogLine) => tokenRotated(line) && line.authenticatedWith === 'current';
    await eventually(
      async () => {
        await Promise.resolve();
        if (sidecar.count(renewals) < 3) throw new Error(`${String(sidecar.count(renewals))} renewals so far`);
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    assert.equal(
      sidecar.count((line) => tokenRotated(line) && line.authenticatedWith === 'bootstrap'),
      1,
    );
    rememberToken();
    assert.equal(readFileSync(published(), 'utf8'), kubeconfig, 'the kubeconfig never changes: it names the file');
    assert.equal(await whoAmI(published()), user);

    const secret = await source
      .admin()
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ namespace: 'default', name: secretName });
    const data = Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]),
    );
    assert.deepEqual(Object.keys(data).sort(), ['ca.crt', 'config', 'token']);
    fromSecret = join(dir, 'from-secret.kubeconfig');
    writeFileSync(fromSecret, data.config ?? '', { mode: 0o600 });
    assert.equal(await whoAmI(fromSecret), user);
    assert.equal(secret.metadata?.annotations?.['kubeconfig-rotator.io/identity'], user);

    // `status` reads either publication: the token's ID and expiry, never the token.
    const status = (...args: string[]) => execute(process.execPath, [CLI, 'status', ...args]);
    const ofDirectory = await status(join(dir, 'out'));
    assert.match(ofDirectory.stdout, /^credential: {4}token$/m);
    assert.match(ofDirectory.stdout, new RegExp(`^identity: {6}${user}$`, 'm'));
    const ofSecret = await status('--secret', `default/${secretName}`, '--kubeconfig', source.state.kubeconfig);
    assert.match(ofSecret.stdout, /^next rotation: .*; sidecar\)$/m);
    for (const output of [ofDirectory.stdout, ofSecret.stdout])
      for (const token of [data.token ?? '', readFileSync(join(dir, 'out', 'token'), 'utf8')])
        assert.ok(!output.includes(token), 'status never prints a token');
  });

  it('started again, reuses the valid token without requesting one', async () => {
    await sidecar.stop();
    const before = readFileSync(join(dir, 'out', 'token'), 'utf8');
    sidecar = startSidecar(config);
    await sidecar.waitForLog((line) => line.msg === 'found a valid token', 30_000);
    await sidecar.waitForLog((line) => line.msg === 'ready', 30_000);
    assert.equal(sidecar.count(tokenRotated), 0);
    assert.equal(readFileSync(join(dir, 'out', 'token'), 'utf8'), before);
  });

  it('the guardrail refuses a longer token, an unbound one, another audience, another ServiceAccount and a legacy token Secret; a compliant request passes', async () => {
    const asAgent = new KubeConfig();
    asAgent.loadFromFile(fromSecret);
    const agent = asAgent.makeApiClient(CoreV1Api);
    const admin = target.admin().makeApiClient(CoreV1Api);
    const request = (api: CoreV1Api, body: object, name = identity.serviceAccount) =>
      api.createNamespacedServiceAccountToken({ namespace: targetNamespace, name, body }).then(
        () => 'issued',
        (error: unknown) => describeError(error),
      );
    const bound = tokenRequestBody(identity.leaseSecret, 600);
    assert.equal(await request(agent, bound), 'issued');
    assert.match(
      await request(agent, tokenRequestBody(identity.leaseSecret, 3600)),
      /last at most 1800 s; this request asks for 3600 s/,
    );
    const unbound = { spec: { expirationSeconds: 600 } };
    assert.match(await request(agent, unbound), /must be bound to Secret kcr-tok-\w+-lease/);
    // The policy holds for anyone asking for this ServiceAccount's tokens, an admin included.
    assert.match(await request(admin, unbound), /must be bound to Secret/);
    assert.match(
      await request(agent, tokenRequestBody(identity.leaseSecret, 600, ['vault'])),
      /may name only the audiences/,
    );

    // Granted more than its own tokens by mistake, the ServiceAccount is still refused another's.
    const rbac = target.admin().makeApiClient(RbacAuthorizationV1Api);
    const metadata = { name: 'too-broad', namespace: targetNamespace };
    await admin.createNamespacedServiceAccount({ namespace: targetNamespace, body: { metadata: { name: 'other' } } });
    await rbac.createNamespacedRole({
      namespace: targetNamespace,
      body: { metadata, rules: [{ apiGroups: [''], resources: ['serviceaccounts/token'], verbs: ['create'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: targetNamespace,
      body: {
        metadata,
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'too-broad' },
        subjects: [{ kind: 'ServiceAccount', name: identity.serviceAccount, namespace: targetNamespace }],
      },
    });
    await eventually(async () => {
      assert.match(
        await request(agent, { spec: { expirationSeconds: 600 } }, 'other'),
        /may request tokens for itself only/,
      );
    });
    await rbac.deleteNamespacedRoleBinding(metadata);
    await rbac.deleteNamespacedRole(metadata);

    // Issue 22: a legacy token Secret for the ServiceAccount would hold a token that never expires and
    // survives revoke: refused to anyone, an admin included; one for another ServiceAccount is not (the control).
    const legacy = (account: string) =>
      admin
        .createNamespacedSecret({
          namespace: targetNamespace,
          body: {
            metadata: { name: uniqueName('legacy'), annotations: { 'kubernetes.io/service-account.name': account } },
            type: 'kubernetes.io/service-account-token',
          },
        })
        .then(
          () => 'created',
          (error: unknown) => describeError(error),
        );
    assert.match(
      await legacy(identity.serviceAccount),
      /no Secret of type kubernetes.io\/service-account-token for ServiceAccount/,
    );
    assert.equal(await legacy('other'), 'created');
    // The sidecar's own requests, all through the guardrail, went on meanwhile.
    const before = sidecar.count(tokenRotated);
    await sidecar.waitForLog((line) => tokenRotated(line) && sidecar.count(tokenRotated) > before, 30_000);
  });

  it('`revoke` deletes the lease Secret, revoking every token at once: the check notices, re-bootstrap is reported, and a new bootstrap restores it', async () => {
    // Renewal minutes away: the token's refusal is noticed by the periodic check, not by a renewal.
    await sidecar.stop();
    writeConfig({ minRemainingSeconds: 60 }, 2);
    // Its Events go on this (stand-in) pod.
    const pod = uniqueName('kcr-token-sidecar');
    sidecar = startSidecar(config, { env: { POD_NAME: pod, POD_NAMESPACE: 'default' } });
    await sidecar.waitForLog((line) => line.msg === 'ready', 30_000);

    // A Secret with a lease's name that is not ours is never deleted.
    const stranger = uniqueName('stranger');
    await target
      .admin()
      .makeApiClient(CoreV1Api)
      .createNamespacedSecret({
        namespace: targetNamespace,
        body: { metadata: { name: tokenIdentity(stranger, targetNamespace).leaseSecret } },
      });
    await assert.rejects(revoke(stranger), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 1);
      assert.match(String(error.stderr), /is not this source's token lease: its type is Opaque/);
      return true;
    });

    const { stdout } = await revoke();
    assert.match(stdout, new RegExp(`deleted Secret ${targetNamespace}/${identity.leaseSecret} \\(uid [-0-9a-f]+\\)`));
    assert.match(stdout, /kubeconfig-rotator bootstrap --credential token --source-name/);
    assert.match((await revoke()).stdout, /does not exist: the tokens of source \S+ are already revoked/);
    await eventually(
      async () => {
        await assert.rejects(whoAmI(published()), /Unauthorized|401/);
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    const refused = await sidecar.waitForLog(
      (line) => line.msg.startsWith('the target refuses the current token'),
      10_000,
    );
    assert.match(String(refused.error), /401/);
    const needed = await sidecar.waitForLog(
      (line) => line.msg.startsWith('re-bootstrap needed'),
      10_000,
      sidecar.lines.indexOf(refused),
    );
    assert.equal(needed.level, 'error');
    assert.equal(sidecar.count(tokenRotated), 0, 'no renewal came first');
    const events = await eventually(async () => {
      const list = await source
        .admin()
        .makeApiClient(CoreV1Api)
        .listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${pod}` });
      const reasons = new Set(list.items.map((event) => event.reason));
      if (!reasons.has('CredentialRefused') || !reasons.has('RebootstrapNeeded'))
        throw new Error(`events so far: ${[...reasons].join(', ')}`);
      return list.items;
    });
    for (const event of events) assert.equal(event.type, 'Warning', String(event.reason));
    const reported = await metrics();
    assert.equal(sampleValue(reported, 'kubeconfig_rotator_rebootstrap_needed', { target: 'east' }), 1);
    assert.equal(sampleValue(reported, 'kubeconfig_rotator_ready', { target: 'east' }), 0);

    await bootstrap();
    await mountBootstrap();
    const restored = await sidecar.waitForLog(
      (line) => tokenRotated(line) && line.authenticatedWith === 'bootstrap',
      60_000,
      sidecar.lines.indexOf(needed),
    );
    assert.equal(restored.subject, user);
    rememberToken();
    await eventually(
      async () => {
        assert.equal(await whoAmI(published()), user);
      },
      { timeoutMs: 15_000 },
    );
    const after = await metrics();
    assert.equal(sampleValue(after, 'kubeconfig_rotator_rebootstrap_needed', { target: 'east' }), 0);
  });
});
