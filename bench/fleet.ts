// Fleet benchmark (`npm run bench:fleet`): 1,000 simulated sidecars (identities) renewing against one approver
// (a real process with its own RBAC and client rate limits), staggered by the jittered schedule. Each
// simulated sidecar is the sidecar's own CsrIssuer (key, CSR, list + watch of its CSR) authenticated with its
// current certificate, so the API sees what a fleet of sidecars sends. Prints the approval latency and the
// apiserver's request rate during the renewals.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { readFileSync } from 'node:fs';
import { rotationDeadline } from '../src/core/rotation/schedule.ts';
import { systemClock } from '../src/io/clock.ts';
import { clientConfigFor } from '../src/core/kubeconfig/client-config.ts';
import type { ClusterEndpoint } from '../test/support/kubeconfig.ts';
import { createKubeClient } from '../src/io/kube/rest.ts';
import { createLogger } from '../src/io/log.ts';
import { CsrIssuer } from '../src/sidecar/csr-issuer.ts';
import type { PendingRequest, PendingStore } from '../src/sidecar/pending-store.ts';
import { get } from '../scripts/testbed/cluster.ts';
import { parseMetrics, total } from '../scripts/testbed/metrics.ts';
import { approverAccount, ApproverProcess } from '../test/support/approver-process.ts';
import { testCluster } from '../test/support/clusters.ts';
import { globalSetup, globalTeardown } from '../test/support/global-setup.ts';
import { createBootstrapToken, uniqueName } from '../test/support/kube.ts';
import { scratchDir } from '../test/support/sidecar.ts';
import { quantile, recordFigure, recordSamples, withWorkers } from './samples.ts';

const FLEET = Number(process.env.KCR_BENCH_FLEET ?? 1000);
const WINDOW_SECONDS = Number(process.env.KCR_BENCH_FLEET_WINDOW_SECONDS ?? 120);
const BOOTSTRAP_CONCURRENCY = 50;

const out = (line = '') => process.stdout.write(`${line}\n`);

class MemoryPendingStore implements PendingStore {
  #request: PendingRequest | undefined;
  load(): Promise<PendingRequest | undefined> {
    return Promise.resolve(this.#request);
  }
  save(request: PendingRequest): Promise<void> {
    this.#request = request;
    return Promise.resolve();
  }
  clear(): Promise<void> {
    this.#request = undefined;
    return Promise.resolve();
  }
}

// The issuers' watch failures, as the sidecar would log them.
const logger = createLogger({ name: 'bench-fleet', level: 'warn' });

interface Member {
  readonly commonName: string;
  certPem: string;
  keyPem: string;
}

function issuerFor(member: Member, run: string): CsrIssuer {
  return new CsrIssuer({
    spec: {
      subject: { commonName: member.commonName, organizations: ['kcr-fleet'] },
      keyAlgorithm: 'ecdsa-p256',
      signerName: 'kubernetes.io/kube-apiserver-client',
      expirationSeconds: 3600,
      approvalTimeoutMs: 600_000,
    },
    pending: new MemoryPendingStore(),
    clock: systemClock,
    logger,
    labels: { 'kubeconfig-rotator.bench/run': run },
  });
}

/** Sum of apiserver_request_total, from the apiserver's own metrics. */
async function apiserverRequests(): Promise<number> {
  const { body } = await get(testCluster('target').state, '/metrics');
  return total(parseMetrics(body), 'apiserver_request_total');
}

async function main(): Promise<void> {
  const scratch = scratchDir('bench-fleet');
  try {
    await globalSetup();
    await benchFleet(scratch.path);
  } finally {
    scratch.dispose();
    await globalTeardown();
  }
}

async function benchFleet(scratch: string): Promise<void> {
  const target = testCluster('target');
  const admin = target.admin();
  const endpoint: ClusterEndpoint = {
    server: target.state.server,
    caPem: readFileSync(target.state.caCertFile, 'utf8'),
  };
  const run = uniqueName('fleet');
  const account = await approverAccount(target, 'kubernetes.io/kube-apiserver-client', scratch);
  const bootstrap = await createBootstrapToken(admin);
  // The fleet's identities may renew (request CSRs with their certificates): bound by their group.
  await admin.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: `kcr-bench-${run}` },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: `kcr-test-csr-requester-${bootstrap.token.id}`,
      },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'kcr-fleet' }],
    },
  });
  const policy = join(scratch, 'policy.yaml');
  writeFileSync(
    policy,
    stringify({
      policies: [
        {
          name: 'fleet',
          bootstrap: { groups: [bootstrap.group] },
          identity: { commonNames: [`${run}-*`], organizations: ['kcr-fleet'] },
        },
      ],
    }),
  );
  const approver = new ApproverProcess({ account, policy, logDir: scratch });
  try {
    await approver.waitForLog((line) => line.msg === 'approver started');
    out(`# fleet benchmark (${new Date().toISOString()}, Node ${process.version})`);
    out();
    out(
      `${String(FLEET)} simulated sidecars, one approver (client limit 20 requests/s, burst 30, 5 workers, no SubjectAccessReview).`,
    );

    const members: Member[] = Array.from({ length: FLEET }, (_, index) => ({
      commonName: `${run}-${String(index).padStart(4, '0')}`,
      certPem: '',
      keyPem: '',
    }));
    const asBootstrap = createKubeClient(clientConfigFor(endpoint, { token: bootstrap.value }));
    const bootstrapStarted = performance.now();
    await withWorkers(members, BOOTSTRAP_CONCURRENCY, async (member) => {
      const issued = await issuerFor(member, run).obtain(asBootstrap, new AbortController().signal);
      if ('token' in issued.credential) throw new Error('the CSR issuer gave a token');
      member.certPem = issued.credential.certPem;
      member.keyPem = issued.credential.keyPem;
    });
    await asBootstrap.close();
    out(
      `first certificates for all ${String(FLEET)} (bootstrap token, ${String(BOOTSTRAP_CONCURRENCY)} at a time): ${((performance.now() - bootstrapStarted) / 1000).toFixed(1)} s`,
    );

    // Renewal times as the sidecars draw them: a uniform 70-90% of the lifetime, the 20% window compressed
    // into WINDOW_SECONDS.
    const lifetimeMs = (WINDOW_SECONDS * 1000) / 0.2;
    const start = Date.now() + 2_000;
    const schedule = members.map((member) => ({
      member,
      at: rotationDeadline(
        { notBefore: start - 0.7 * lifetimeMs, notAfter: start + 0.3 * lifetimeMs },
        { at: start - 0.7 * lifetimeMs, issued: true },
        { minFraction: 0.7, maxFraction: 0.9, minRemainingSeconds: 0 },
        Math.random(),
      ),
    }));
    const requestsBefore = await apiserverRequests();
    const latencies: number[] = [];
    const waits: number[] = [];
    let failures = 0;
    await Promise.all(
      schedule.map(async ({ member, at }) => {
        await sleep(Math.max(0, at - Date.now()));
        const started = performance.now();
        try {
          const asMember = createKubeClient(clientConfigFor(endpoint, member));
          const issued = await issuerFor(member, run)
            .obtain(asMember, new AbortController().signal)
            .finally(() => asMember.close());
          latencies.push(performance.now() - started);
          waits.push(issued.timings.wait);
        } catch {
          failures++;
        }
      }),
    );
    const elapsed = (Date.now() - start) / 1000;
    const requests = (await apiserverRequests()) - requestsBefore;
    recordSamples('fleet-renewal-latency-ms', latencies);
    out(
      `renewals: ${String(latencies.length)} done, ${String(failures)} failed, over ${elapsed.toFixed(1)} s (scheduled across ${String(WINDOW_SECONDS)} s)`,
    );
    out(
      `renewal latency (key + create + approval + issue, seen by the sidecar): p50 ${quantile(latencies, 0.5).toFixed(0)} ms, p99 ${quantile(latencies, 0.99).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms`,
    );
    out(
      `of which waiting for approval and issue: p50 ${quantile(waits, 0.5).toFixed(0)} ms, p99 ${quantile(waits, 0.99).toFixed(0)} ms`,
    );
    recordFigure({
      benchmark: 'fleet of 1,000',
      measure: 'renewal seen by the sidecar, p50',
      ours: quantile(latencies, 0.5),
      unit: 'ms',
    });
    recordFigure({
      benchmark: 'fleet of 1,000',
      measure: 'renewal seen by the sidecar, p99',
      ours: quantile(latencies, 0.99),
      unit: 'ms',
    });
    recordFigure({
      benchmark: 'fleet of 1,000',
      measure: 'apiserver requests during the renewals',
      ours: requests / elapsed,
      unit: 'requests/s',
    });
    out(
      `apiserver requests during the renewals: ${String(requests)} (${(requests / elapsed).toFixed(1)}/s; ${(requests / FLEET).toFixed(1)} per renewal, all clients included)`,
    );
    out();
  } finally {
    await approver.stop();
    await account.delete();
  }
}

await main();
