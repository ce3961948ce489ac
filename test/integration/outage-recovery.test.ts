// What happens after a credential's lifetime has gone by with nobody there (issue 24), on the real control
// plane. The two tests each wait out a 600-s credential, so they run side by side (the file's wait is one
// lifetime, not two):
// - certificate sidecars whose target's apiserver is stopped for longer than the certificate's remaining life
//   recover with no action once the apiserver is back, one through its still-valid bootstrap token, one through
//   federated bootstrap (its pod's own ServiceAccount token of the source, which the target trusts), and a
//   consumer using each published kubeconfig calls successfully again within a stated bound (45 s) of the
//   target signing again;
// - a token target whose first (bootstrap) token has expired: a running sidecar goes on renewing with its own
//   tokens, while a new pod's sidecar cannot start and says so where a person looks (log, Event, readiness,
//   metric), until the fix it names (bootstrap again) lets it start within seconds.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { readToken } from '../../src/core/credential/token.ts';
import { BACKOFF_CAP_WITHOUT_CREDENTIAL_MS } from '../../src/core/rotation/schedule.ts';
import { clustersRoot, ensureControlPlane } from '../../scripts/testbed/binaries.ts';
import { startComponent, stopCluster, stopComponent } from '../../scripts/testbed/cluster.ts';
import { parseMetrics, sampleValue } from '../../scripts/testbed/metrics.ts';
import { clusterFromState, testCluster, type TestCluster } from '../support/clusters.ts';
import { agentRequest, createCsr } from '../support/approver-process.ts';
import { approveCsr, eventually, kubectlWhoAmI, uniqueName, waitForCertificate } from '../support/kube.ts';
import {
  createPodStandIn,
  outputDir,
  prepareTarget,
  rotated,
  sidecarTestFile,
  TestApprover,
  tokenRotated,
  writeKubeletMount,
  writeSidecarConfig,
  writeTargetsConfig,
  type SidecarProcess,
} from '../support/sidecar.ts';
import { bootstrapFederated, createAgentPod, grantRenewal, startFederatedCluster } from '../support/federation.ts';
import { mountBootstrapSecret, prepareTokenTarget, tokenOf } from '../support/token-target.ts';

const source = testCluster('source');
const target = testCluster('target');
const { secrets, startSidecar, remember, scratch } = sidecarTestFile('outage-recovery');

/**
 * The bound on recovery once the target signs again: the sidecar's longest wait between attempts while it
 * holds no usable certificate (30 s), plus one CSR issued and approved and the consumer's next call (15 s).
 */
const RECOVERY_BOUND_MS = BACKOFF_CAP_WITHOUT_CREDENTIAL_MS + 15_000;

/** How long the target may take to sign again before the test gives up on it (seen: 13-90 s). */
const SIGNER_RESUME_MAX_MS = 180_000;

/**
 * How long after the apiserver's return the target signs again, timed with a CSR of the test's own that the
 * admin approves. kube-controller-manager keeps running through the outage, and its informers back off as any
 * client-go reflector does (to [30, 60) s between attempts: reflector.go's defaultBackoffMax and Jitter 1.0),
 * so its signer may resume up to a minute after the apiserver: that wait is the target's, not the sidecar's.
 */
async function signingResumes(cluster: TestCluster, backAt: number): Promise<number> {
  const name = await createCsr(cluster.admin(), 'outage-probe', {
    pem: agentRequest('kcr-outage-probe'),
    expirationSeconds: 600,
  });
  await approveCsr(cluster.admin(), name);
  await waitForCertificate(cluster.admin(), name, SIGNER_RESUME_MAX_MS);
  return Date.now() - backAt;
}

let kubectl = '';
/** The user a kubeconfig authenticates as (a SelfSubjectReview), as any client using it would call. */
function whoAmI(kubeconfig: string): Promise<string> {
  return kubectlWhoAmI(kubectl, kubeconfig, { timeoutMs: 10_000 });
}

async function readyz(sidecar: SidecarProcess): Promise<{ status: number; body: string }> {
  const answer = await fetch(`http://127.0.0.1:${String(await sidecar.port())}/readyz`);
  return { status: answer.status, body: await answer.text() };
}

async function metric(sidecar: SidecarProcess, name: string, target: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${String(await sidecar.port())}/metrics`)).text();
  return sampleValue(parseMetrics(text), name, { target });
}

/** A stand-in for the sidecar's pod in the source, so its Events have something to be about. */
const podFor = (name: string) => createPodStandIn(source, 'default', name);

async function warningsOn(pod: string): Promise<Map<string, string>> {
  const list = await source
    .admin()
    .makeApiClient(CoreV1Api)
    .listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${pod}` });
  return new Map(
    list.items.filter((event) => event.type === 'Warning').map((event) => [event.reason ?? '', event.message ?? '']),
  );
}

describe('after a credential lifetime with nobody there', { concurrency: true }, () => {
  const outageName = uniqueName('outage-long');
  // The outage cluster trusts the source's ServiceAccount issuer for federated bootstrap; `bootstrap
  // --bootstrap-with federated` writes the authenticator into this file, which the apiserver reloads.
  const authConfig = join(scratch.path, 'authentication-config.yaml');
  const audience = `kubeconfig-rotator:${outageName}`;
  let outage: TestCluster;

  before(async () => {
    const binDir = await ensureControlPlane();
    kubectl = join(binDir, 'kubectl');
    // A cluster of its own: stopping a shared apiserver would break other tests.
    outage = clusterFromState(await startFederatedCluster(outageName, authConfig, binDir));
  });
  after(async () => {
    await stopCluster(clustersRoot(), outageName);
  });

  /** A sidecar of one certificate target on the outage cluster, and its consumer's kubeconfig. */
  interface Watched {
    readonly label: string;
    readonly sidecar: SidecarProcess;
    readonly kubeconfig: string;
    readonly user: string;
    readonly approver: TestApprover;
    /** Adds its key and bootstrap secret to those the logs must not hold. */
    remember(): void;
  }

  /** The usual test target: a bootstrap token (valid 1 h) and the identity's renewal RBAC. */
  async function withBootstrapToken(): Promise<Watched> {
    const prepared = await prepareTarget(outage);
    const sidecar = startSidecar(writeSidecarConfig(prepared, { expirationSeconds: 600 }));
    return {
      remember: () => {
        remember(prepared);
      },
      label: 'bootstrap token',
      sidecar,
      kubeconfig: join(outputDir(prepared), 'kubeconfig'),
      user: prepared.identity.commonName,
      approver: new TestApprover(outage.admin(), prepared.name),
    };
  }

  /** `bootstrap --bootstrap-with federated` as a user runs it; the sidecar's pod's own ServiceAccount token bootstraps. */
  async function withFederatedBootstrap(): Promise<Watched> {
    const name = uniqueName('fb');
    const namespace = uniqueName('agents');
    const account = { namespace, name: 'agent' };
    const core = source.admin().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: account.name } } });
    await bootstrapFederated({
      credential: 'certificate',
      sourceName: uniqueName('west'),
      targetName: name,
      targetKubeconfig: outage.state.kubeconfig,
      sourceKubeconfig: source.state.kubeconfig,
      namespace,
      serviceAccount: `${namespace}/${account.name}`,
      audience,
      authConfig,
    });
    const identity = { commonName: `kcr-agent-${name}`, organizations: ['kcr-agents'] };
    // Renewals come from the identity itself, as for a bootstrap token's identities.
    await grantRenewal(outage.admin(), `kcr-test-renewal-${name}`, identity.commonName);
    const created = await createAgentPod(source.admin(), namespace, account.name);
    const pod = created.metadata?.name ?? 'agent-0';
    const dir = join(scratch.path, name);
    mkdirSync(dir, { recursive: true });
    const bootstrapKubeconfig = await mountBootstrapSecret(
      source,
      { namespace, name: `kubeconfig-rotator-bootstrap-${name}` },
      join(dir, 'bootstrap'),
    );
    assert.doesNotMatch(bootstrapKubeconfig, /token:/, 'no bootstrap token exists');
    const config = writeTargetsConfig(dir, source.state.kubeconfig, [
      {
        name,
        bootstrapKubeconfig: join(dir, 'bootstrap', 'kubeconfig'),
        identity,
        expirationSeconds: 600,
        rotation: { minRemainingSeconds: 60 },
        bootstrap: { with: 'federated', audiences: [audience], serviceAccount: account },
        sinks: { directory: { path: join(dir, 'out') } },
      },
    ]);
    const sidecar = startSidecar(config, {
      env: {
        POD_NAME: pod,
        POD_NAMESPACE: namespace,
        POD_UID: created.metadata?.uid ?? '',
        POD_SERVICE_ACCOUNT: account.name,
      },
    });
    return {
      remember: () => {
        if (existsSync(join(dir, 'out', 'tls.key'))) secrets.push(readFileSync(join(dir, 'out', 'tls.key'), 'utf8'));
      },
      label: 'federated bootstrap',
      sidecar,
      kubeconfig: join(dir, 'out', 'kubeconfig'),
      user: identity.commonName,
      approver: new TestApprover(outage.admin(), name),
    };
  }

  it('the target down for longer than the 600-s certificates: with a bootstrap token and with federated bootstrap, the sidecar recovers with no action, and the consumer calls again within 45 s of the target signing again', async (context) => {
    const watched = [await withBootstrapToken(), await withFederatedBootstrap()];
    try {
      const firsts = await Promise.all(watched.map(({ sidecar }) => sidecar.waitForLog(rotated, 90_000)));
      assert.equal(firsts[1]?.authenticatedWith, 'bootstrap');
      const notAfter = Math.max(...firsts.map((first) => Date.parse(String(first.notAfter))));
      for (const first of firsts)
        assert.ok(
          Date.parse(String(first.notAfter)) - Date.now() > 480_000,
          `a 600-s certificate, valid until ${String(first.notAfter)}`,
        );
      for (const one of watched) assert.equal(await whoAmI(one.kubeconfig), one.user, one.label);

      // Down from now until 20 s after the certificates expired: every renewal attempt fails, then they expire.
      const markers = watched.map(({ sidecar }) => sidecar.lines.length);
      await stopComponent(outage.state, 'kube-apiserver');
      const stoppedAt = Date.now();
      await sleep(notAfter + 20_000 - Date.now());
      for (const [i, { sidecar, label }] of watched.entries()) {
        const during = sidecar.lines.slice(markers[i]).filter((line) => line.msg.startsWith('rotation failed'));
        assert.ok(during.length > 0, `${label}: the renewal was attempted during the outage`);
        for (const failure of during) assert.equal(failure.result, 'error', `${label}: ${String(failure.error)}`);
        assert.ok(
          during.some((line) => line.authenticatedWith === 'bootstrap'),
          `${label}: after expiry the attempts bootstrap`,
        );
        const expired = await readyz(sidecar);
        assert.equal(expired.status, 503);
        assert.match(expired.body, /certificate expired at/);
      }

      outage = clusterFromState(await startComponent(outage.state, 'kube-apiserver'));
      const backAt = Date.now();
      const [signingMs, figures] = await Promise.all([
        signingResumes(outage, backAt),
        Promise.all(
          watched.map(async ({ label, sidecar, kubeconfig, user }, i) => {
            let consumerAt = 0;
            let failedCalls = 0;
            while (consumerAt === 0 && Date.now() - backAt < SIGNER_RESUME_MAX_MS + RECOVERY_BOUND_MS) {
              try {
                assert.equal(await whoAmI(kubeconfig), user);
                consumerAt = Date.now();
              } catch {
                failedCalls++;
                await sleep(500);
              }
            }
            const recovered = await sidecar.waitForLog(rotated, 5_000, markers[i]);
            assert.equal(recovered.authenticatedWith, 'bootstrap', label);
            return {
              label,
              sidecarMs: Date.parse(String(recovered.time)) - backAt,
              consumerMs: consumerAt === 0 ? Infinity : consumerAt - backAt,
              failedCalls,
            };
          }),
        ),
      ]);
      const report =
        `apiserver down ${((backAt - stoppedAt) / 1000).toFixed(0)} s (the certificates expired ` +
        `${((notAfter - stoppedAt) / 1000).toFixed(0)} s in); after it was back: the target signed again in ` +
        `${(signingMs / 1000).toFixed(1)} s; ` +
        figures
          .map(
            (one) =>
              `${one.label}: new certificate published in ${(one.sidecarMs / 1000).toFixed(1)} s, consumer's first ` +
              `successful call in ${(one.consumerMs / 1000).toFixed(1)} s (${String(one.failedCalls)} failed calls before)`,
          )
          .join('; ');
      context.diagnostic(report);
      for (const one of figures)
        assert.ok(
          one.consumerMs - signingMs <= RECOVERY_BOUND_MS,
          `${one.label} recovered within ${String(RECOVERY_BOUND_MS)} ms of the target signing again`,
        );
      for (const [i, { sidecar, label }] of watched.entries()) {
        assert.equal((await readyz(sidecar)).status, 200, label);
        assert.deepEqual(
          sidecar.lines.slice(markers[i]).filter((line) => line.msg.startsWith('re-bootstrap needed')),
          [],
          `${label}: an outage is not a refused bootstrap`,
        );
      }
    } finally {
      for (const one of watched) one.remember();
      await Promise.all(watched.map(({ sidecar }) => sidecar.stop()));
      await Promise.all(watched.map(({ approver }) => approver.stop()));
    }
  });

  it('a token target after its first token expired: a running sidecar renews with its own tokens; a new pod cannot start, says why and the fix, and starts once bootstrap runs again', async () => {
    const targetNamespace = uniqueName('kcr-expired');
    const prepared = await prepareTokenTarget(target, source, { targetNamespace, ttl: '10m' });
    secrets.push(prepared.firstToken);
    const firstExpiry = readToken(prepared.firstToken).notAfter;
    const configFor = (name: string, bootstrapDir: string) => {
      const dir = join(scratch.path, name);
      mkdirSync(dir, { recursive: true });
      const path = writeTargetsConfig(dir, source.state.kubeconfig, [
        {
          name: 'east',
          bootstrapKubeconfig: join(bootstrapDir, 'kubeconfig'),
          ...prepared.targetFields,
          expirationSeconds: 600,
          sinks: { directory: { path: join(dir, 'out') } },
        },
      ]);
      return { path, published: join(dir, 'out', 'kubeconfig'), token: join(dir, 'out', 'token') };
    };
    const old = configFor('old-pod', join(prepared.dir, 'bootstrap'));
    const running = startSidecar(old.path);
    let fresh: SidecarProcess | undefined;
    try {
      const first = await running.waitForLog(tokenRotated, 60_000);
      assert.equal(first.authenticatedWith, 'bootstrap');
      // kube-apiserver accepts a ServiceAccount token up to a minute past its exp (go-jose's DefaultLeeway, in
      // pkg/serviceaccount/claims.go): a new sidecar started within that minute still got a token (seen).
      await sleep(firstExpiry + 75_000 - Date.now());
      assert.ok(
        running.count((line) => tokenRotated(line) && line.authenticatedWith === 'current') >= 1,
        'renewed with its own token while the first was valid',
      );
      secrets.push(readFileSync(old.token, 'utf8'));
      assert.equal(await whoAmI(old.published), prepared.user, 'the running pod is unaffected');

      // A new pod (a rollout, an eviction, a scale-up) mounts the same bootstrap Secret: its token expired.
      const pod = uniqueName('kcr-new-pod');
      await podFor(pod);
      const mount = join(scratch.path, `${pod}-bootstrap`);
      writeKubeletMount(mount, { kubeconfig: readFileSync(prepared.bootstrapKubeconfig, 'utf8') });
      const config = configFor(pod, mount);
      fresh = startSidecar(config.path, { env: { POD_NAME: pod, POD_NAMESPACE: 'default' } });
      const refused = await fresh.waitForLog((line) => line.msg.startsWith('rotation failed'), 30_000);
      assert.equal(refused.result, 'unauthorized');
      assert.equal(refused.authenticatedWith, 'bootstrap');
      const needed = await fresh.waitForLog((line) => line.msg.startsWith('re-bootstrap needed'), 30_000);
      assert.equal(needed.reason, 'BootstrapRefused');
      assert.match(needed.msg, /the bootstrap token expired/);
      assert.match(needed.msg, /fix: run kubeconfig-rotator bootstrap .* again.*--credential federated/);
      const ready = await readyz(fresh);
      assert.equal(ready.status, 503);
      assert.match(ready.body, /re-bootstrap needed: no token.*fix: run kubeconfig-rotator bootstrap/);
      assert.equal(await metric(fresh, 'kubeconfig_rotator_rebootstrap_needed', 'east'), 1);
      const warnings = await eventually(async () => {
        const found = await warningsOn(pod);
        assert.ok(found.has('BootstrapRefused'), `warnings so far: ${[...found.keys()].join(', ')}`);
        return found;
      });
      assert.match(warnings.get('BootstrapRefused') ?? '', /fix: run kubeconfig-rotator bootstrap.*check --config/);
      // Retries go on, at most 30 s apart (it holds nothing usable), all refused.
      const retried = await fresh.waitForLog(
        (line) => line.msg.startsWith('rotation failed') && line.failures === 3,
        20_000,
      );
      assert.equal(retried.result, 'unauthorized');

      // The fix it names: bootstrap again (a fresh first token in the same Secret, which the kubelet updates).
      const again = await prepared.rebootstrap();
      secrets.push(tokenOf(again));
      writeKubeletMount(mount, { kubeconfig: again });
      const started = await fresh.waitForLog(tokenRotated, 30_000);
      assert.equal(started.authenticatedWith, 'bootstrap');
      secrets.push(readFileSync(config.token, 'utf8'));
      assert.equal(await whoAmI(config.published), prepared.user);
      await fresh.waitForLog((line) => line.msg === 're-bootstrap no longer needed', 5_000);
      assert.equal(await whoAmI(old.published), prepared.user, 'the running pod is still unaffected');
    } finally {
      await fresh?.stop();
      await running.stop();
      await target.admin().makeApiClient(CoreV1Api).deleteNamespace({ name: targetNamespace });
    }
  });
});
