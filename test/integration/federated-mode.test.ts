// Federated targets on the test clusters: a third cluster whose kube-apiserver trusts the `source` cluster's
// ServiceAccount issuer (--authentication-config, a jwt authenticator as `bootstrap --credential federated`
// prints it: audience, per-source user prefix, one admitted ServiceAccount). The sidecar requests tokens
// from the source and publishes them; no secret of the target exists in the source, and the target stores
// nothing for the source but RBAC. The target refuses other ServiceAccounts, other audiences and other
// issuers; removing the source from its configuration (reloaded by the apiserver) refuses the tokens.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSign, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import {
  authenticationConfiguration,
  federatedUser,
  jwtAuthenticator,
  type FederationInput,
} from '../../src/core/bootstrap/federation.ts';
import { readToken } from '../../src/core/credential/token.ts';
import { clustersRoot, ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { stopCluster, type ClusterState } from '../../scripts/testbed/cluster.ts';
import { clusterFromState, testCluster } from '../support/clusters.ts';
import { eventually, kubectlWhoAmI, uniqueName } from '../support/kube.ts';
import { sidecarTestFile, tokenRotated, writeTargetsConfig, type SidecarProcess } from '../support/sidecar.ts';
import { bootstrapFederated, createAgentPod, startFederatedCluster } from '../support/federation.ts';
import { mountBootstrapSecret } from '../support/token-target.ts';

const execute = promisify(execFile);
const CLI = new URL('../../src/cli.ts', import.meta.url).pathname;
const source = testCluster('source');
const other = testCluster('target');
const { scratch, secrets, startSidecar } = sidecarTestFile('federated-mode');

const admin = (state: ClusterState) => clusterFromState(state).admin();

describe('federated mode', () => {
  const namespace = uniqueName('agents');
  const account = { namespace, name: 'admiralty' };
  const fedName = uniqueName('fed-target');
  const dir = mkdtempSync(join(scratch.path, 'federated-'));
  const authConfig = join(dir, 'authentication-config.yaml');
  const audience = 'kubeconfig-rotator:fed-east';
  let federation: FederationInput;
  let fed: ClusterState;
  let kubectl = '';
  let sidecar: SidecarProcess | undefined;
  let bootstrapOutput = '';
  const user = () => federatedUser(federation, account);

  /** A kubeconfig for the federated target with `token`, as any client would hold it. */
  const kubeconfigWith = (token: string, file: string) => {
    writeFileSync(
      file,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'fed', cluster: { server: fed.server, 'certificate-authority': fed.caCertFile } }],
        users: [{ name: 'agent', user: { token } }],
        contexts: [{ name: 'fed', context: { cluster: 'fed', user: 'agent' } }],
        'current-context': 'fed',
      }),
      { mode: 0o600 },
    );
    secrets.push(token);
    return file;
  };
  const whoAmI = (kubeconfig: string) => kubectlWhoAmI(kubectl, kubeconfig);
  const sourceToken = async (cluster: ClusterState, name: string, audiences: string[]) => {
    const response = await admin(cluster)
      .makeApiClient(CoreV1Api)
      .createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences, expirationSeconds: 600 } } });
    return response.status?.token ?? assert.fail('no token');
  };
  const writeAuthConfig = (authenticators: Record<string, unknown>[]) => {
    writeFileSync(authConfig, stringify(authenticationConfiguration(authenticators)));
  };

  /** `bootstrap --credential federated` for the source, writing the target's configuration file. */
  const bootstrapSource = () =>
    bootstrapFederated({
      credential: 'federated',
      sourceName: 'west',
      targetName: 'fed-east',
      targetKubeconfig: fed.kubeconfig,
      sourceKubeconfig: source.state.kubeconfig,
      namespace,
      serviceAccount: `${namespace}/admiralty`,
      audience,
      authConfig,
      extra: ['--cluster-role', 'view'],
    });

  before(async () => {
    const binDir = await ensureControlPlane();
    kubectl = join(binDir, 'kubectl');
    const sourceAdmin = admin(source.state);
    for (const kube of [sourceAdmin, admin(other.state)]) {
      const core = kube.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      for (const name of ['admiralty', 'other'])
        await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    }
    federation = {
      issuerUrl: source.state.server,
      caPem: readFileSync(source.state.caCertFile, 'utf8'),
      audience,
      userPrefix: 'source-west:',
      accounts: [account],
    };
    // The target starts trusting no one; `bootstrap --credential federated` adds the source.
    fed = await startFederatedCluster(fedName, authConfig, binDir);
    const printed = await bootstrapSource();
    bootstrapOutput = printed.stdout;
    assert.match(bootstrapOutput, /openid-configuration: readable anonymously/);
    assert.match(bootstrapOutput, new RegExp(`wrote the authenticator for ${source.state.server}`));
    // The sidecar's pod, in the source: its tokens are bound to it.
    await createAgentPod(sourceAdmin, namespace, 'admiralty');
    // The bootstrap Secret of a federated target: the server and CA, no credential.
    await mountBootstrapSecret(
      source,
      { namespace, name: 'kubeconfig-rotator-bootstrap-fed-east' },
      join(dir, 'bootstrap'),
    );
  });
  after(async () => {
    await sidecar?.stop();
    await stopCluster(clustersRoot(), fedName);
  });

  it('publishes source tokens the target accepts as the mapped user, across three rotations, with no failed call', async (context) => {
    const config = writeTargetsConfig(dir, source.state.kubeconfig, [
      {
        name: 'fed-east',
        bootstrapKubeconfig: join(dir, 'bootstrap', 'kubeconfig'),
        credential: 'federated',
        serviceAccount: account,
        audiences: [audience],
        targetUser: user(),
        expirationSeconds: 600,
        revocationCheckSeconds: 2,
        rotation: { minRemainingSeconds: 60, forceIntervalSeconds: 3 },
        sinks: { directory: { path: join(dir, 'out') } },
      },
    ]);
    const pod = await admin(source.state).makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name: 'agent-0' });
    sidecar = startSidecar(config, { env: { POD_NAME: 'agent-0', POD_UID: pod.metadata?.uid ?? '' } });
    const first = await sidecar.waitForLog(tokenRotated, 60_000);
    assert.equal(first.subject, `system:serviceaccount:${namespace}:admiralty`);
    const published = join(dir, 'out', 'kubeconfig');
    const facts = readToken(readFileSync(join(dir, 'out', 'token'), 'utf8'));
    assert.deepEqual(facts.audiences, [audience]);
    assert.deepEqual(facts.boundTo, { kind: 'Pod', name: 'agent-0' });
    assert.match(readFileSync(published, 'utf8'), /tokenFile: token/);

    // A long-lived reader through the tokenFile kubeconfig while the sidecar rotates.
    const calls = { ok: 0, failed: [] as string[] };
    const until = Date.now() + 14_000;
    while (Date.now() < until) {
      try {
        assert.equal(await whoAmI(published), user());
        calls.ok++;
      } catch (error) {
        calls.failed.push(String(error));
      }
    }
    secrets.push(readFileSync(join(dir, 'out', 'token'), 'utf8'));
    assert.deepEqual(calls.failed, []);
    assert.ok(calls.ok > 10, `${String(calls.ok)} calls`);
    assert.ok(sidecar.count(tokenRotated) >= 4, `${String(sidecar.count(tokenRotated))} rotations`);
    const durations = sidecar.lines
      .filter(tokenRotated)
      .map((line) => Number(line.durationMs))
      .sort((a, b) => a - b);
    context.diagnostic(
      `federated rotations: ${String(durations.length)}, trigger to published p50 ${String(durations[Math.floor(durations.length / 2)])} ms, max ${String(durations.at(-1))} ms`,
    );

    // No secret of the target's in the source: what is published is the source's own token (and the
    // target's public CA), nothing the target issued.
    assert.deepEqual(
      readdirSync(join(dir, 'out'))
        .filter((name) => !name.startsWith('..'))
        .sort(),
      ['ca.crt', 'kubeconfig', 'token'],
    );
    // The target stores nothing for the source but its RBAC: no Secret, no ServiceAccount of ours there.
    const fedCore = admin(fed).makeApiClient(CoreV1Api);
    assert.deepEqual(
      (await fedCore.listSecretForAllNamespaces()).items.map((secret) => secret.metadata?.name),
      [],
    );
  });

  it('bootstrap printed the self-managed authenticator it applied, and prints the EKS identity provider input', async (context) => {
    context.diagnostic(`bootstrap --credential federated (self-managed):\n${bootstrapOutput}`);
    assert.match(bootstrapOutput, /the target sees source-west:system:serviceaccount:\S+:admiralty/);
    assert.match(bootstrapOutput, /credential: federated, audiences: \[kubeconfig-rotator:fed-east\]/);
    const eks = await execute(process.execPath, [
      CLI,
      'bootstrap',
      '--credential',
      'federated',
      '--target-type',
      'eks',
      '--dry-run',
      '--source-name',
      'west',
      '--target-name',
      'prod-eks',
      '--target-kubeconfig',
      fed.kubeconfig,
      '--source-kubeconfig',
      source.state.kubeconfig,
      '--service-account',
      `${namespace}/admiralty`,
    ]);
    context.diagnostic(`bootstrap --credential federated --target-type eks --dry-run:\n${eks.stdout}`);
    const input = JSON.parse(/\{[\s\S]*\n\}/.exec(eks.stdout)?.[0] ?? '{}') as {
      oidc?: { issuerUrl: string; clientId: string; usernamePrefix: string; requiredClaims: Record<string, string> };
    };
    assert.deepEqual(input.oidc, {
      identityProviderConfigName: 'kcr-west',
      issuerUrl: source.state.server,
      clientId: 'kubeconfig-rotator:prod-eks',
      usernameClaim: 'sub',
      usernamePrefix: 'source-west:',
      requiredClaims: { sub: `system:serviceaccount:${namespace}:admiralty` },
    });
  });

  it('the target refuses another ServiceAccount, another audience, another issuer and an expired token', async () => {
    const refused = async (token: string, label: string) => {
      await assert.rejects(whoAmI(kubeconfigWith(token, join(dir, `${label}.kubeconfig`))), /Unauthorized|401/, label);
    };
    await refused(await sourceToken(source.state, 'other', [audience]), 'other-account');
    await refused(await sourceToken(source.state, 'admiralty', ['kubeconfig-rotator:elsewhere']), 'other-audience');
    // The same namespace and name in another cluster: another issuer, which the target does not trust.
    await refused(await sourceToken(other.state, 'admiralty', [audience]), 'other-issuer');
    // Expired: the API issues nothing shorter than 10 minutes, so sign one with the source's own
    // ServiceAccount key, as its apiserver would; the same token unexpired is the control.
    const signed = (expiresIn: number) => {
      const now = Math.floor(Date.now() / 1000);
      const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const body = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({
        iss: source.state.server,
        sub: `system:serviceaccount:${namespace}:admiralty`,
        aud: [audience],
        iat: now - 1200,
        nbf: now - 1200,
        exp: now + expiresIn,
        jti: randomUUID(),
      })}`;
      const key = readFileSync(join(source.state.dir, 'pki', 'sa.key'));
      return `${body}.${createSign('RSA-SHA256').update(body).sign(key).toString('base64url')}`;
    };
    assert.equal(await whoAmI(kubeconfigWith(signed(600), join(dir, 'signed.kubeconfig'))), user());
    await refused(signed(-60), 'expired');
    // And the right one is accepted, as a control.
    assert.equal(
      await whoAmI(
        kubeconfigWith(await sourceToken(source.state, 'admiralty', [audience]), join(dir, 'ok.kubeconfig')),
      ),
      user(),
    );
  });

  it('removing the source from the target configuration refuses its tokens from then on; the sidecar reports it; adding it back restores', async () => {
    const running = sidecar ?? assert.fail('the sidecar of the first test is not running');
    const published = join(dir, 'out', 'kubeconfig');
    writeAuthConfig([]);
    await eventually(
      async () => {
        await assert.rejects(whoAmI(published), /Unauthorized|401/);
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    const refusal = await running.waitForLog(
      (line) => line.msg.startsWith('the target refuses the current token') || line.msg.startsWith('rotation failed'),
      30_000,
    );
    assert.match(String(refusal.error), /401|not accept/);
    // Added back the way it was added: bootstrap again (it converges on the file as it is).
    await bootstrapSource();
    await eventually(
      async () => {
        assert.equal(await whoAmI(published), user());
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    await running.waitForLog(tokenRotated, 30_000, running.lines.indexOf(refusal));
  });

  // Issue 22: an empty prefix (here a hand-edited file) would map the source's token to the target's own
  // system:serviceaccount:... user; the authenticator's userValidationRules have the apiserver refuse it.
  it("the target's apiserver refuses a source user mapped into system: names, whatever the file's prefix", async () => {
    const kubeconfig = kubeconfigWith(
      await sourceToken(source.state, 'admiralty', [audience]),
      join(dir, 'unprefixed.kubeconfig'),
    );
    assert.equal(await whoAmI(kubeconfig), user(), 'the control: accepted with the prefix');
    writeAuthConfig([jwtAuthenticator({ ...federation, userPrefix: '' })]);
    await eventually(
      async () => {
        await assert.rejects(whoAmI(kubeconfig), /Unauthorized|401/);
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
    await bootstrapSource();
    await eventually(
      async () => {
        assert.equal(await whoAmI(kubeconfig), user());
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  });
});
