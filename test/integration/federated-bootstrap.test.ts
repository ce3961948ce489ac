// Federated bootstrap of a certificate target (issue 24, section 1): a third cluster whose kube-apiserver trusts
// two source issuers (--authentication-config, written by `bootstrap --credential certificate --bootstrap-with
// federated` itself): the `source` cluster as source "west" and the `target` test cluster as source "east".
// Its approver's policy names each source's mapped ServiceAccount users as that source's bootstrap identities.
// No bootstrap token exists in it at all: a sidecar with empty state gets its first certificate with the pod's
// own source token, and renews with the certificate. Another source's ServiceAccount asking for west's
// identity is denied with the reason. Beside it, a certificate target whose bootstrap token expired fails
// loudly, naming the fix.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AuthenticationV1Api,
  CertificatesV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  type V1CertificateSigningRequest,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { readCredential } from '../../src/core/credential/credential.ts';
import { clustersRoot, ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { stopCluster, type ClusterState } from '../../scripts/testbed/cluster.ts';
import {
  agentRequest,
  approverAccount,
  ApproverProcess,
  createCsr,
  deleteRunCsrs,
  mountPolicy,
  waitForDecision,
  type ApproverAccount,
} from '../support/approver-process.ts';
import { clusterFromState, testCluster } from '../support/clusters.ts';
import { eventually, uniqueName } from '../support/kube.ts';
import { kubeConfigFor } from '../support/kubeconfig.ts';
import {
  prepareTarget,
  rotated,
  sidecarTestFile,
  writeSidecarConfig,
  writeTargetsConfig,
  type SidecarProcess,
} from '../support/sidecar.ts';
import { bootstrapFederated, createAgentPod, grantRenewal, startFederatedCluster } from '../support/federation.ts';
import { mountBootstrapSecret } from '../support/token-target.ts';

const SIGNER = 'kubernetes.io/kube-apiserver-client';
const source = testCluster('source');
const east = testCluster('target');
const { scratch, secrets, startSidecar, track, remember } = sidecarTestFile('federated-bootstrap');

const admin = (state: ClusterState) => clusterFromState(state).admin();

describe('federated bootstrap of a certificate target', () => {
  const namespace = uniqueName('agents');
  const fedName = uniqueName('fedboot');
  const run = uniqueName('fedboot-run');
  const dir = mkdtempSync(join(scratch.path, 'fedboot-'));
  const authConfig = join(dir, 'authentication-config.yaml');
  const audience = 'kubeconfig-rotator:fed-east';
  const westUser = `source-west:system:serviceaccount:${namespace}:admiralty`;
  const eastUser = `source-east:system:serviceaccount:${namespace}:admiralty`;
  let fed: ClusterState;
  let account: ApproverAccount | undefined;
  let approver: ApproverProcess;
  const printed: Record<string, string> = {};

  /** `bootstrap --credential certificate --bootstrap-with federated` for one source, into the target's file. */
  const bootstrapSource = (name: string, cluster: { kubeconfig: string }) =>
    bootstrapFederated({
      credential: 'certificate',
      sourceName: name,
      targetName: 'fed-east',
      targetKubeconfig: fed.kubeconfig,
      sourceKubeconfig: cluster.kubeconfig,
      namespace,
      serviceAccount: `${namespace}/admiralty`,
      audience,
      authConfig,
    });

  before(async () => {
    const binDir = await ensureControlPlane();
    for (const kube of [admin(source.state), admin(east.state)]) {
      const core = kube.makeApiClient(CoreV1Api);
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'admiralty' } } });
    }
    // The target starts trusting no one; each bootstrap adds its source.
    fed = await startFederatedCluster(fedName, authConfig, binDir);
    printed.west = (await bootstrapSource('west', source.state)).stdout;
    printed.east = (await bootstrapSource('east', east.state)).stdout;
    // The approver of the target: each source's mapped ServiceAccount users bootstrap that source's identity.
    account = await approverAccount(clusterFromState(fed), SIGNER, dir);
    const policy = mountPolicy(
      join(dir, 'policy'),
      stringify({
        policies: [
          {
            name: 'west',
            bootstrap: { federatedUsers: [`source-west:system:serviceaccount:${namespace}:*`] },
            identity: { commonNames: ['agent-west'] },
          },
          {
            name: 'east',
            bootstrap: { federatedUsers: [eastUser] },
            identity: { commonNames: ['agent-east'] },
          },
        ],
      }),
    );
    approver = track(new ApproverProcess({ account, policy, logDir: dir }));
    await approver.waitForLog((line) => line.msg === 'started leading');
    // The identity renews with its certificate (the approver chart grants its sources' identities this).
    await grantRenewal(admin(fed), 'agent-west-renewal', 'agent-west');
    // The sidecar's pod, in the source: its bootstrap tokens are bound to it.
    await createAgentPod(admin(source.state), namespace, 'admiralty');
    await mountBootstrapSecret(
      source,
      { namespace, name: 'kubeconfig-rotator-bootstrap-fed-east' },
      join(dir, 'bootstrap'),
    );
  });

  after(async () => {
    await approver.stop();
    await deleteRunCsrs(admin(fed), run).catch(() => undefined);
    await stopCluster(clustersRoot(), fedName);
    for (const kube of [admin(source.state), admin(east.state)])
      await kube
        .makeApiClient(CoreV1Api)
        .deleteNamespace({ name: namespace })
        .catch(() => undefined);
    // What --allow-anonymous-discovery bound in the shared target test cluster (the source keeps its own, as
    // federated-mode.test.ts leaves it).
    await admin(east.state)
      .makeApiClient(RbacAuthorizationV1Api)
      .deleteClusterRoleBinding({ name: 'kubeconfig-rotator:anonymous-issuer-discovery' })
      .catch(() => undefined);
  });

  it('bootstrap set up the trust, the CSR requester RBAC of the mapped user and printed the policy and sidecar fields, with no bootstrap token', async (context) => {
    context.diagnostic(`bootstrap --credential certificate --bootstrap-with federated (west):\n${printed.west ?? ''}`);
    context.diagnostic(`the same for source east:\n${printed.east ?? ''}`);
    const west = printed.west ?? '';
    assert.match(west, new RegExp(`wrote the authenticator for ${source.state.server}`));
    assert.match(west, new RegExp(`the target sees ${westUser}`));
    assert.match(west, /no bootstrap token was created/);
    assert.match(west, new RegExp(`federatedUsers:\\s+- ${westUser}`));
    assert.match(west, new RegExp(`with: federated\\s+audiences:\\s+- ${audience}`));
    const binding = await admin(fed)
      .makeApiClient(RbacAuthorizationV1Api)
      .readClusterRoleBinding({ name: 'kubeconfig-rotator:federated-bootstrap:west' });
    assert.deepEqual(
      binding.subjects?.map(({ apiGroup, kind, name }) => ({ apiGroup, kind, name })),
      [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: westUser }],
    );
    const tokens = await admin(fed)
      .makeApiClient(CoreV1Api)
      .listNamespacedSecret({ namespace: 'kube-system', fieldSelector: 'type=bootstrap.kubernetes.io/token' });
    assert.deepEqual(
      tokens.items.map((secret) => secret.metadata?.name),
      [],
    );
    assert.doesNotMatch(readFileSync(join(dir, 'bootstrap', 'kubeconfig'), 'utf8'), /token/);
  });

  it('a sidecar with empty state and no bootstrap token anywhere gets its first certificate with the pod token, then renews with the certificate', async (context) => {
    const config = writeTargetsConfig(dir, source.state.kubeconfig, [
      {
        name: 'fed-east',
        bootstrapKubeconfig: join(dir, 'bootstrap', 'kubeconfig'),
        identity: { commonName: 'agent-west' },
        bootstrap: { with: 'federated', audiences: [audience] },
        expirationSeconds: 600,
        rotation: { minRemainingSeconds: 60, forceIntervalSeconds: 4 },
        sinks: { directory: { path: join(dir, 'out') } },
      },
    ]);
    const pod = await admin(source.state).makeApiClient(CoreV1Api).readNamespacedPod({ namespace, name: 'agent-0' });
    // The pod's own ServiceAccount, from the downward API variables the charts and the injector set.
    const sidecar: SidecarProcess = startSidecar(config, {
      env: {
        POD_NAME: 'agent-0',
        POD_UID: pod.metadata?.uid ?? '',
        POD_NAMESPACE: namespace,
        POD_SERVICE_ACCOUNT: 'admiralty',
      },
    });
    // The apiserver reloads its authentication configuration by itself: allow for that, then bootstrap.
    const first = await sidecar.waitForLog(rotated, 180_000);
    assert.equal(first.authenticatedWith, 'bootstrap');
    assert.equal(first.subject, 'CN=agent-west');
    const csr = await admin(fed)
      .makeApiClient(CertificatesV1Api)
      .readCertificateSigningRequest({ name: String(first.csr) });
    assert.equal(csr.spec.username, westUser, 'the first CSR was made as the mapped source ServiceAccount');
    assert.match(approvedMessage(csr), /^policy west allows a first certificate for "agent-west"/);
    const keyPem = readFileSync(join(dir, 'out', 'tls.key'), 'utf8');
    secrets.push(keyPem);
    const published = readCredential({ certPem: readFileSync(join(dir, 'out', 'tls.crt'), 'utf8'), keyPem });
    assert.equal(published.identity, 'CN=agent-west');

    const renewal = await sidecar.waitForLog((line) => rotated(line) && line.authenticatedWith === 'current', 60_000);
    const renewed = await admin(fed)
      .makeApiClient(CertificatesV1Api)
      .readCertificateSigningRequest({ name: String(renewal.csr) });
    assert.equal(renewed.spec.username, 'agent-west', 'the renewal was made with the certificate');
    assert.match(approvedMessage(renewed), /^policy west allows a renewal for "agent-west"/);
    context.diagnostic(
      `first certificate (federated bootstrap) after ${String(first.durationMs)} ms of its rotation; renewal ${String(renewal.durationMs)} ms`,
    );
    const ready = await fetch(`http://127.0.0.1:${String(await sidecar.port())}/readyz`);
    assert.equal(ready.status, 200);
    await sidecar.stop();
  });

  it("another source's ServiceAccount asking for west's identity is denied by the approver, with the reason", async () => {
    const token = (
      await admin(east.state)
        .makeApiClient(CoreV1Api)
        .createNamespacedServiceAccountToken({
          namespace,
          name: 'admiralty',
          body: { spec: { audiences: [audience], expirationSeconds: 600 } },
        })
    ).status?.token;
    assert.ok(token !== undefined);
    secrets.push(token);
    const asEast = kubeConfigFor({ server: fed.server, caPem: readFileSync(fed.caCertFile, 'utf8') }, { token });
    // Once the apiserver has reloaded its configuration with east's authenticator, the token is east's user.
    const seen = await eventually(
      async () => {
        const review = await asEast
          .makeApiClient(AuthenticationV1Api)
          .createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
        return review.status?.userInfo?.username;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    assert.equal(seen, eastUser);
    const name = await createCsr(asEast, run, { pem: agentRequest('agent-west'), expirationSeconds: 600 });
    const csr = await admin(fed).makeApiClient(CertificatesV1Api).readCertificateSigningRequest({ name });
    assert.equal(csr.spec.username, eastUser);
    const decision = await waitForDecision(admin(fed), name);
    assert.equal(decision.type, 'Denied');
    assert.equal(
      decision.message,
      'denied by kubeconfig-rotator approver: east: identity.commonName: "agent-west" is not an identity this policy allows',
    );
  });

  it('a certificate target whose bootstrap token expired fails loudly: log and /readyz name the fix', async () => {
    // The `target` test cluster signs certificates for bootstrap tokens; this one has expired before the start.
    const prepared = await prepareTarget(east, { expiration: new Date(Date.now() + 1_000) });
    remember(prepared);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const sidecar = startSidecar(writeSidecarConfig(prepared));
    const line = await sidecar.waitForLog((entry) => entry.msg.startsWith('re-bootstrap needed'), 60_000);
    assert.equal(line.reason, 'BootstrapRefused');
    assert.match(String(line.error), /401/);
    assert.match(line.msg, /the bootstrap token expired/);
    assert.match(line.msg, /run kubeconfig-rotator bootstrap for this source and target again/);
    assert.match(line.msg, /bootstrap --bootstrap-with federated/);
    const ready = await fetch(`http://127.0.0.1:${String(await sidecar.port())}/readyz`);
    assert.equal(ready.status, 503);
    const detail = await ready.text();
    assert.match(detail, /re-bootstrap needed/);
    assert.match(detail, /the bootstrap token expired/);
    await sidecar.stop();
  });
});

function approvedMessage(csr: V1CertificateSigningRequest): string {
  return csr.status?.conditions?.find((condition) => condition.type === 'Approved')?.message ?? '';
}
