// Approver benchmarks on the real control plane (`npm run bench:approver`), against kube-controller-manager's
// csrapproving controller approving kubelet-client CSRs in the same cluster and the same run. Prints figures
// and ratios (ours / reference), never asserts on time:
//   1. decision latency, CSR created -> Approved condition seen by a watch, p50 and p99;
//   2. a burst of 1,000 CSRs created at once: time until every one is approved;
//   3. approver RSS with 10,000 CSRs in its cache, beside kube-controller-manager's RSS holding the same;
//   4. approver RSS with 1,000 hostile pending CSRs of about 1 MiB each (a valid request followed by junk, which
//      Go's PEM decoder accepts), and its decision latency for new CSRs meanwhile, against the reference's;
//   5. approver RSS with 2,000 pending CSRs of under 16 KiB carrying 1,400 empty extensions each, beside the same
//      number of ordinary pending CSRs: the former may cost at most twice the latter (issue 22).
// Under the same client rate limit (20 requests/s, burst 30: kube-controller-manager by its defaults, ours by
// its flags), ours runs a policy with a SubjectAccessReview (the same API work per CSR as the reference: one
// review, one approval update) and one without (one update per CSR).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CertificatesV1Api,
  RbacAuthorizationV1Api,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from '@kubernetes/client-node';
import { buildCertificationRequest } from '../src/core/pki/csr.ts';
import { generateKeyPair } from '../src/core/pki/keys.ts';
import { loadClientConfig } from '../src/io/kube/load-client-config.ts';
import { createInformer } from '../src/io/kube/informer.ts';
import { createKubeClient, restListWatchSource } from '../src/io/kube/rest.ts';
import { kubeConfigFor } from '../test/support/kubeconfig.ts';
import { createLogger } from '../src/io/log.ts';
import { writeTarget } from '../src/core/policy/csr-record.ts';
import { REVIEW_DEFAULTS } from '../src/core/policy/schema.ts';
import { CSR_PATH, kubeDecisionWriter, kubeReviewer } from '../src/approver/kube.ts';
import { approverAccount, ApproverProcess, type ApproverAccount } from '../test/support/approver-process.ts';
import { emptyExtensions, keyPair, requestPem } from '../test/support/hostile-csr.ts';
import { writeKubeletMount } from '../scripts/testbed/mount.ts';
import { testCluster } from '../test/support/clusters.ts';
import { globalSetup, globalTeardown } from '../test/support/global-setup.ts';
import {
  createBootstrapToken,
  eventually,
  statusCode,
  uniqueName,
  type TestBootstrapToken,
} from '../test/support/kube.ts';
import { RUNTIME_IMPORTS } from './runtime-imports.ts';
import { quantile, recordFigure, recordSamples, withWorkers } from './samples.ts';

const LATENCY_CSRS = Number(process.env.KCR_BENCH_LATENCY_CSRS ?? 100);
const BURST_CSRS = Number(process.env.KCR_BENCH_BURST_CSRS ?? 1000);
const CACHE_CSRS = Number(process.env.KCR_BENCH_CACHE_CSRS ?? 10_000);
const HOSTILE_CSRS = Number(process.env.KCR_BENCH_HOSTILE_CSRS ?? 1000);
const HOSTILE_BYTES = Number(process.env.KCR_BENCH_HOSTILE_BYTES ?? 1_000_000);
const HOSTILE_LATENCY_CSRS = 20;
const EXTENSION_CSRS = Number(process.env.KCR_BENCH_EXTENSION_CSRS ?? 2000);
const EXTENSIONS = 1_400;
// What a pending CSR of 1,400 extensions may cost, in ordinary pending CSRs.
const EXTENSION_COST_BOUND = 2;
// Memory the approver must stay under in the cache and hostile parts (the chart's limit is twice this).
const RSS_BUDGET_MIB = 256;
const PARTS = new Set((process.env.KCR_BENCH_PARTS ?? 'latency,burst,cache,hostile,extensions').split(','));
// Node options of the approver in the latency and burst parts: what docs/approver.md recommends for the image
// (the cache part compares Node defaults with --optimize-for-size itself).
const NODE_OPTIONS = (process.env.KCR_BENCH_APPROVER_NODE_OPTIONS ?? '--optimize-for-size')
  .split(' ')
  .filter((option) => option !== '');
const QPS = 20;
const BURST = 30;
// Requests this process sends at once to fill the cluster with CSRs or decide them.
const CONCURRENCY = 50;
const NODE_CLIENT_ROLE = 'system:certificates.k8s.io:certificatesigningrequests:nodeclient';
const RUN_LABEL = 'kubeconfig-rotator.bench/run';
// The hostile CSRs' own label: the approval clock's watch (RUN_LABEL) must not list a gigabyte of them.
const HOSTILE_LABEL = 'kubeconfig-rotator.bench/hostile';

const out = (line = '') => process.stdout.write(`${line}\n`);
const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 1)} ms`;
const ratio = (ours: number, reference: number) => (ours / reference).toFixed(2);

const REPO = new URL('../', import.meta.url).pathname;
// The approver runs as in its container image: compiled JavaScript (no type stripping at run time).
const COMPILED = join(REPO, '.cache', 'bench-approver-dist');

const run = uniqueName('kcr-bench');

/** The target cluster's handles, made in main() once globalSetup has the cluster running. */
function targetCluster() {
  const target = testCluster('target');
  const admin = target.admin();
  return {
    target,
    admin,
    certificates: admin.makeApiClient(CertificatesV1Api),
    endpoint: { server: target.state.server, caPem: readFileSync(target.state.caCertFile, 'utf8') },
  };
}
type TargetCluster = ReturnType<typeof targetCluster>;

/** One side of the comparison: who requests, for which signer, with which subject. */
interface Side {
  readonly name: string;
  readonly requester: KubeConfig;
  readonly signerName: string;
  readonly subject: () => { commonName: string; organizations: string[] };
}

/** Watches this run's CSRs and records when each is first seen, and when it is first seen approved. */
function approvalClock({ target }: TargetCluster) {
  const seenAt = new Map<string, number>();
  const approvedAt = new Map<string, number>();
  const waiters = new Set<() => void>();
  const client = createKubeClient(loadClientConfig(target.state.kubeconfig, { env: {} }));
  const informer = createInformer<V1CertificateSigningRequest, boolean>({
    source: restListWatchSource(client, CSR_PATH, { labelSelector: `${RUN_LABEL}=${run}` }),
    describe: 'benchmark CSRs',
    key: (csr) => csr.metadata?.name ?? '',
    version: (csr) => csr.metadata?.resourceVersion ?? '',
    transform: (csr) => (csr.status?.conditions ?? []).some((condition) => condition.type === 'Approved'),
    handlers: {
      upsert: (key, approved) => {
        if (!seenAt.has(key)) seenAt.set(key, performance.now());
        if (!approved || approvedAt.has(key)) return;
        approvedAt.set(key, performance.now());
        for (const wake of waiters) wake();
      },
      remove: () => undefined,
    },
    logger: createLogger({ name: 'bench', level: 'warn' }),
  });
  informer.start();
  return {
    /** From the CSR's creation to its approval, both as this watch saw them (same stream, same clock). */
    decisionMs: (name: string) => (approvedAt.get(name) ?? Number.NaN) - (seenAt.get(name) ?? Number.NaN),
    async until(names: readonly string[]): Promise<number> {
      while (!names.every((name) => approvedAt.has(name))) {
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
          setTimeout(wake, 1_000);
        });
      }
      return Math.max(...names.map((name) => approvedAt.get(name) ?? Number.NaN));
    },
    stop: async () => {
      await informer.stop();
      await client.close();
    },
  };
}
type ApprovalClock = ReturnType<typeof approvalClock>;

/** Creates one CSR; resolves with its name. */
async function createCsr(side: Side): Promise<{ name: string }> {
  const name = uniqueName(run);
  const request = buildCertificationRequest(side.subject(), generateKeyPair('ecdsa-p256'));
  await side.requester.makeApiClient(CertificatesV1Api).createCertificateSigningRequest({
    body: {
      metadata: { name, labels: { [RUN_LABEL]: run } },
      spec: {
        request: Buffer.from(request).toString('base64'),
        signerName: side.signerName,
        usages: ['digital signature', 'client auth'],
        expirationSeconds: 3600,
      },
    },
  });
  return { name };
}

/** Decision latency of each side, one CSR at a time, the sides taking turns so that all see the same load. */
async function latencies(
  sides: readonly Side[],
  clock: ApprovalClock,
  count: number = LATENCY_CSRS,
): Promise<number[][]> {
  // Five unmeasured CSRs per side first: the requester's RBAC reaches the authorizer, connections warm up.
  for (const side of sides) {
    await clock.until([(await eventually(() => createCsr(side))).name]);
    for (let i = 0; i < 4; i++) await clock.until([(await createCsr(side)).name]);
  }
  const samples = sides.map((): number[] => []);
  for (let i = 0; i < count; i++) {
    for (const [index, side] of sides.entries()) {
      const { name } = await createCsr(side);
      await clock.until([name]);
      samples[index]?.push(clock.decisionMs(name));
      await sleep(50);
    }
  }
  return samples;
}

async function burst(side: Side, clock: ApprovalClock): Promise<{ createMs: number; approveMs: number }> {
  const started = performance.now();
  const names: string[] = [];
  await withWorkers(Array.from({ length: BURST_CSRS }), CONCURRENCY, async () => {
    names.push((await createCsr(side)).name);
  });
  const created = performance.now();
  const done = await clock.until(names);
  return { createMs: created - started, approveMs: done - started };
}

async function deleteRunCsrs({ certificates }: TargetCluster): Promise<void> {
  await certificates.deleteCollectionCertificateSigningRequest({ labelSelector: `${RUN_LABEL}=${run}` });
}

/**
 * The approver's two API calls made alone from this process with the approver's own writer and reviewer, one at a
 * time on a warm connection without a limiter: what the apiserver and the HTTP stack take, for the breakdown.
 */
async function bareRequests({ target }: TargetCluster): Promise<{ reviewMs: number[]; writeMs: number[] }> {
  const client = createKubeClient(loadClientConfig(target.state.kubeconfig, { env: {} }));
  const writer = kubeDecisionWriter(client);
  const reviewer = kubeReviewer(client);
  const reviewMs: number[] = [];
  const writeMs: number[] = [];
  const requester = { username: `system:bootstrap:${run}`, groups: ['system:bootstrappers'] };
  // What the reviewed policy's `subjectAccessReview: true` asks.
  const attributes = { ...REVIEW_DEFAULTS, name: 'reviewed' };
  try {
    // The first rounds warm the connection and the code paths; they are not counted.
    for (let round = -5; round < LATENCY_CSRS / 2; round++) {
      const request = buildCertificationRequest(
        { commonName: `${run}-bare`, organizations: [] },
        generateKeyPair('ecdsa-p256'),
      );
      const created = await client.request<V1CertificateSigningRequest>('POST', CSR_PATH, {
        body: {
          apiVersion: 'certificates.k8s.io/v1',
          kind: 'CertificateSigningRequest',
          metadata: { name: uniqueName(`${run}-bare`), labels: { [RUN_LABEL]: run } },
          spec: {
            request: Buffer.from(request).toString('base64'),
            signerName: `kubeconfig-rotator.bench/${run}-bare`,
            usages: ['client auth'],
          },
        },
      });
      let started = performance.now();
      await reviewer.allowed(requester, attributes);
      const review = performance.now() - started;
      started = performance.now();
      await writer.write(writeTarget(created), { type: 'Approved', reason: 'Bench', message: 'bare request' });
      if (round < 0) continue;
      reviewMs.push(review);
      writeMs.push(performance.now() - started);
    }
  } finally {
    await client.close();
  }
  return { reviewMs, writeMs };
}

// One SubjectAccessReview at a time, back to back and after this much idle time (about the approver's gap
// between the CSRs of the latency part): a quiet process and a quiet apiserver take longer to answer.
const FLOOR_GAPS_MS = [0, 20];
const FLOOR_REQUESTS = 80;

/**
 * The same SubjectAccessReview sent alone by client-go (scripts/reqprobe: protobuf as kube-controller-manager
 * sends it, and JSON) and by the approver's reviewer, p50 per gap: what the client, the encoding and idling cost.
 */
async function reviewFloor({ target }: TargetCluster): Promise<void> {
  const probe = join(REPO, '.cache', 'reqprobe');
  execFileSync('go', ['build', '-trimpath', '-o', probe, '.'], { cwd: join(REPO, 'scripts', 'reqprobe') });
  const goSamples = (contentType: string) =>
    execFileSync(probe, [
      '-kubeconfig',
      target.state.kubeconfig,
      '-count',
      String(FLOOR_REQUESTS),
      '-gaps-ms',
      FLOOR_GAPS_MS.join(','),
      '-content-type',
      contentType,
    ])
      .toString()
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { samplesMs: number[] }).samplesMs);
  const client = createKubeClient(loadClientConfig(target.state.kubeconfig, { env: {} }));
  const reviewer = kubeReviewer(client);
  const requester = { username: `system:bootstrap:${run}`, groups: ['system:bootstrappers'] };
  const ours: number[][] = [];
  try {
    for (const gapMs of FLOOR_GAPS_MS) {
      const samples: number[] = [];
      for (let round = -5; round < FLOOR_REQUESTS; round++) {
        await sleep(gapMs);
        const started = performance.now();
        await reviewer.allowed(requester, { ...REVIEW_DEFAULTS, name: 'reviewed' });
        if (round >= 0) samples.push(performance.now() - started);
      }
      ours.push(samples);
    }
  } finally {
    await client.close();
  }
  const rows: [string, number[][]][] = [
    ["client-go, protobuf (kube-controller-manager's)", goSamples('application/vnd.kubernetes.protobuf')],
    ['client-go, JSON', goSamples('application/json')],
    ["the approver's client (rest.ts), JSON", ours],
  ];
  out(
    `one SubjectAccessReview sent alone, p50 of ${String(FLOOR_REQUESTS)}, HTTP/2, ${FLOOR_GAPS_MS.map((gap) => (gap === 0 ? 'back to back' : `after ${String(gap)} ms idle`)).join(' | ')}:`,
  );
  for (const [label, samples] of rows)
    out(`  ${label.padEnd(48)} ${samples.map((gap) => ms(quantile(gap, 0.5))).join(' | ')}`);
  const [reference = [], , mine = []] = rows.map(([, samples]) => samples);
  out(
    `  ratio ours/client-go protobuf: ${FLOOR_GAPS_MS.map((_, index) => ratio(quantile(mine[index] ?? [], 0.5), quantile(reference[index] ?? [], 0.5))).join(' | ')}`,
  );
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024;
}

/** The reference: kubelet-client CSRs from a bootstrap token that may request node client certificates. */
async function referenceSide({ admin, endpoint }: TargetCluster): Promise<Side> {
  const bootstrap = await createBootstrapToken(admin, { extraClusterRoles: [NODE_CLIENT_ROLE] });
  return {
    name: 'kube-controller-manager csrapproving (kubelet client)',
    requester: kubeConfigFor(endpoint, { token: bootstrap.value }),
    signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
    subject: () => ({ commonName: `system:node:${uniqueName('bench-node')}`, organizations: ['system:nodes'] }),
  };
}

/**
 * Ours, as a process with its ServiceAccount's RBAC, deciding for two bootstrap groups: one under a policy
 * that asks a SubjectAccessReview as the reference does, one under a policy that does not (our default).
 */
async function ourSides(
  { target, admin, endpoint }: TargetCluster,
  dir: string,
): Promise<{ reviewed: Side; plain: Side; approver: ApproverProcess; account: ApproverAccount }> {
  const [reviewed, plain] = await Promise.all([createBootstrapToken(admin), createBootstrapToken(admin)]);
  const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createClusterRole({
    body: {
      metadata: { name: run },
      rules: [
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['certificatesigningrequests/kubeconfig-rotator'],
          verbs: ['create'],
        },
      ],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: run },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: run },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: reviewed.group }],
    },
  });
  const account = await approverAccount(target, 'kubernetes.io/kube-apiserver-client', dir);
  const policy =
    writeKubeletMount(join(dir, 'policy'), {
      'policy.yaml': [
        'policies:',
        '  - name: reviewed',
        `    bootstrap: { groups: ['${reviewed.group}'] }`,
        `    identity: { commonNames: ['${run}-*'] }`,
        '    subjectAccessReview: true',
        '  - name: plain',
        `    bootstrap: { groups: ['${plain.group}'] }`,
        `    identity: { commonNames: ['${run}-*'] }`,
        '',
      ].join('\n'),
    })['policy.yaml'] ?? '';
  const approver = new ApproverProcess({
    account,
    policy,
    logDir: dir,
    cli: join(COMPILED, 'cli.js'),
    nodeOptions: NODE_OPTIONS,
    args: ['--kube-api-qps', String(QPS), '--kube-api-burst', String(BURST), '--workers', '5', '--log-level', 'info'],
  });
  // Stopped here if it never leads: the caller's cleanup covers it only once this returns.
  await approver
    .waitForLog((line) => line.msg === 'started leading')
    .catch(async (error: unknown) => {
      await approver.stop();
      throw error;
    });
  const side = (name: string, token: TestBootstrapToken): Side => ({
    name,
    requester: kubeConfigFor(endpoint, { token: token.value }),
    signerName: 'kubernetes.io/kube-apiserver-client',
    subject: () => ({ commonName: `${run}-${uniqueName('agent')}`, organizations: [] }),
  });
  return {
    reviewed: side('kubeconfig-rotator approver, policy with SubjectAccessReview', reviewed),
    plain: side('kubeconfig-rotator approver, policy without review (1 request per CSR)', plain),
    approver,
    account,
  };
}

type OurSides = Awaited<ReturnType<typeof ourSides>>;

/** The latency and burst parts, against the reference, with our approver running for both. */
async function benchAgainstReference(cluster: TargetCluster, clock: ApprovalClock, dir: string): Promise<void> {
  const reference = await referenceSide(cluster);
  const ours = await ourSides(cluster, dir);
  try {
    if (PARTS.has('latency')) await benchLatency(cluster, reference, ours, clock);
    if (PARTS.has('burst')) await benchBurst(cluster, reference, ours, clock);
  } finally {
    await ours.approver.stop();
    await ours.account.delete();
    const rbac = cluster.admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.deleteClusterRoleBinding({ name: run });
    await rbac.deleteClusterRole({ name: run });
  }
}

async function benchLatency(
  cluster: TargetCluster,
  reference: Side,
  ours: OurSides,
  clock: ApprovalClock,
): Promise<void> {
  out(`## decision latency over ${String(LATENCY_CSRS)} CSRs per side, one at a time, the sides taking turns`);
  const [referenceLatency = [], reviewedLatency = [], plainLatency = []] = await latencies(
    [reference, ours.reviewed, ours.plain],
    clock,
  );
  recordSamples('reference-decision-latency-ms', referenceLatency);
  recordSamples('approver-decision-latency-ms', plainLatency);
  recordSamples('approver-reviewed-decision-latency-ms', reviewedLatency);
  for (const [side, samples] of [
    [reference, referenceLatency],
    [ours.reviewed, reviewedLatency],
    [ours.plain, plainLatency],
  ] as const) {
    out(`${side.name}: p50 ${ms(quantile(samples, 0.5))}, p99 ${ms(quantile(samples, 0.99))}`);
  }
  for (const [label, samples] of [
    ['with review', reviewedLatency],
    ['without review', plainLatency],
  ] as const) {
    out(
      `ratio ours (${label})/reference: p50 ${ratio(quantile(samples, 0.5), quantile(referenceLatency, 0.5))}, p99 ${ratio(quantile(samples, 0.99), quantile(referenceLatency, 0.99))}`,
    );
    for (const q of [0.5, 0.99]) {
      recordFigure({
        benchmark: 'approver',
        measure: `decision latency ${label}, p${String(q * 100)} (vs kube-controller-manager)`,
        ours: quantile(samples, q),
        reference: quantile(referenceLatency, q),
        unit: 'ms',
      });
    }
  }
  // Where our time goes: from a worker taking the CSR to the decision written, split into the API calls (as the
  // approver timed them) and the rest (our own work: evaluation, limiter, credentials, serializing).
  const decided = (policy: string) =>
    ours.approver.lines.filter((line) => line.msg === 'decision written' && line.policy === policy);
  out('inside the approver (worker took the CSR -> write answered), p50:');
  for (const [label, policy] of [
    ['with review', 'reviewed'],
    ['without review', 'plain'],
  ] as const) {
    const lines = decided(policy);
    const field = (name: string) => lines.map((line) => Number(line[name]));
    const ourWork = lines.map((line) => Number(line.durationMs) - Number(line.reviewMs) - Number(line.writeMs));
    out(
      `  ${label}: ${ms(quantile(field('durationMs'), 0.5))} = review ${ms(quantile(field('reviewMs'), 0.5))} + write ${ms(quantile(field('writeMs'), 0.5))} + our own work ${ms(quantile(ourWork, 0.5))}`,
    );
  }
  const bare = await bareRequests(cluster);
  out(
    `the same requests sent alone from this process (warm connection, no limiter; apiserver + HTTP stack), p50: review ${ms(quantile(bare.reviewMs, 0.5))}, write ${ms(quantile(bare.writeMs, 0.5))}`,
  );
  await reviewFloor(cluster);
  out();
  await deleteRunCsrs(cluster);
}

async function benchBurst(
  cluster: TargetCluster,
  reference: Side,
  ours: OurSides,
  clock: ApprovalClock,
): Promise<void> {
  out(
    `## a burst of ${String(BURST_CSRS)} CSRs created at once (${String(CONCURRENCY)} concurrent creates): time until all are approved`,
  );
  const bursts: [Side, { createMs: number; approveMs: number }][] = [];
  for (const side of [reference, ours.reviewed, ours.plain]) {
    bursts.push([side, await burst(side, clock)]);
    await deleteRunCsrs(cluster);
  }
  for (const [side, result] of bursts) {
    out(
      `${side.name}: all approved after ${(result.approveMs / 1000).toFixed(1)} s (creating them took ${(result.createMs / 1000).toFixed(1)} s)`,
    );
  }
  const referenceMs = bursts[0]?.[1].approveMs ?? Number.NaN;
  out(
    `ratio ours (with review)/reference: ${ratio(bursts[1]?.[1].approveMs ?? Number.NaN, referenceMs)}; ours (without review)/reference: ${ratio(bursts[2]?.[1].approveMs ?? Number.NaN, referenceMs)}`,
  );
  for (const [label, index] of [
    ['with review', 1],
    ['without review', 2],
  ] as const) {
    recordFigure({
      benchmark: 'approver',
      measure: `${String(BURST_CSRS)} CSRs at once, all approved, ${label}`,
      ours: (bursts[index]?.[1].approveMs ?? Number.NaN) / 1000,
      reference: referenceMs / 1000,
      unit: 's',
    });
  }
  out(
    `(at ${String(QPS)} requests/s, burst ${String(BURST)}, ${String(BURST_CSRS)} CSRs need at least ${((2 * BURST_CSRS - BURST) / QPS).toFixed(1)} s with 2 requests each, ${((BURST_CSRS - BURST) / QPS).toFixed(1)} s with 1)`,
  );
  out();
}

/** The median RSS over five seconds. */
async function settledRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) {
    samples.push(rssMiB(pid));
    await sleep(500);
  }
  return quantile(samples, 0.5);
}

/** Approves or denies every CSR of this run that is still pending, as the admin, as fast as the apiserver goes. */
async function denyAllPending({ certificates }: TargetCluster): Promise<void> {
  const pending = (
    await certificates.listCertificateSigningRequest({ labelSelector: `${RUN_LABEL}=${run}` })
  ).items.filter((csr) => (csr.status?.conditions ?? []).length === 0);
  await withWorkers(pending, CONCURRENCY, (csr) =>
    certificates.replaceCertificateSigningRequestApproval({
      name: csr.metadata?.name ?? '',
      body: {
        ...csr,
        status: {
          conditions: [
            { type: 'Denied', status: 'True', reason: 'Benchmark', message: 'decided before the approver started' },
          ],
        },
      },
    }),
  );
}

async function benchCache(cluster: TargetCluster, dir: string): Promise<void> {
  const { target, admin } = cluster;
  out(`## RSS with ${String(CACHE_CSRS)} CSRs of the approver's signer in its cache`);
  const signerName = `kubeconfig-rotator.bench/${run}`;
  const account = await approverAccount(target, signerName, dir);
  // No policy applies to these CSRs, so pending ones stay pending: the worst case, whole objects are kept.
  const policy =
    writeKubeletMount(join(dir, 'cache-policy'), { 'policy.yaml': `signerName: ${signerName}\npolicies: []\n` })[
      'policy.yaml'
    ] ?? '';
  const kcm = target.state.processes['kube-controller-manager']?.pid ?? 0;
  const variants = [
    { label: 'Node defaults', nodeOptions: [] },
    { label: 'node --optimize-for-size', nodeOptions: ['--optimize-for-size'] },
  ];
  const start = (nodeOptions: readonly string[]) =>
    new ApproverProcess({
      account,
      policy,
      logDir: dir,
      cli: join(COMPILED, 'cli.js'),
      nodeOptions,
    });
  /** Each variant started afresh, so its cache is filled by a paged list as after any restart or failover. */
  const measure = async (expected: number, settleMs: number) => {
    const results: { label: string; rss: number }[] = [];
    for (const variant of variants) {
      const approver = start(variant.nodeOptions);
      try {
        await eventually(
          async () => {
            const ready = await approver.get('/readyz');
            if (!ready.body.includes(`synced, ${String(expected)} CSRs`)) throw new Error(ready.body);
          },
          { timeoutMs: 300_000, intervalMs: 1_000 },
        );
        await sleep(settleMs);
        results.push({ label: variant.label, rss: await settledRss(approver.child.pid ?? 0) });
      } finally {
        await approver.stop();
      }
    }
    return results;
  };
  // What Node costs with the approver's runtime dependencies loaded and nothing else: the floor of this approver.
  const floor = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `${RUNTIME_IMPORTS.map((name) => `await import('${name}');`).join(' ')} setInterval(() => {}, 1 << 30)`,
    ],
    { cwd: REPO, stdio: 'ignore' },
  );
  try {
    const [idle, kcmBefore, library] = [
      await measure(0, 10_000),
      await settledRss(kcm),
      await settledRss(floor.pid ?? 0),
    ];
    const side: Side = {
      name: 'cache',
      requester: admin,
      signerName,
      subject: () => ({ commonName: `${run}-cached`, organizations: [] }),
    };
    await withWorkers(Array.from({ length: CACHE_CSRS }), CONCURRENCY, () => createCsr(side));
    // Long enough for the Unprocessed events (1,000 wait at most, at 20/s) to drain.
    const pending = await measure(CACHE_CSRS, 60_000);
    const kcmPending = await settledRss(kcm);
    await denyAllPending(cluster);
    const decided = await measure(CACHE_CSRS, 10_000);
    const kcmDecided = await settledRss(kcm);
    const perCsr = (after: number, before: number) =>
      `${(((after - before) * 1024) / CACHE_CSRS).toFixed(2)} KiB per CSR`;
    out(
      `Node with the approver's runtime dependencies loaded and nothing else (${RUNTIME_IMPORTS.join(', ')}; Node defaults): ${library.toFixed(1)} MiB`,
    );
    out(
      `kube-controller-manager (reference: all its controllers, the same CSRs in its informer): ${kcmBefore.toFixed(1)} MiB before the CSRs,`,
    );
    out(
      `  ${kcmPending.toFixed(1)} MiB with them pending (${perCsr(kcmPending, kcmBefore)}), ${kcmDecided.toFixed(1)} MiB once decided`,
    );
    variants.forEach(({ label }, index) => {
      const [none, withPending, withDecided] = [
        idle[index]?.rss ?? Number.NaN,
        pending[index]?.rss ?? Number.NaN,
        decided[index]?.rss ?? Number.NaN,
      ];
      out(
        `approver (${label}): ${none.toFixed(1)} MiB with no CSRs; ${withPending.toFixed(1)} MiB with ${String(CACHE_CSRS)} pending (${perCsr(withPending, none)}); ${withDecided.toFixed(1)} MiB with them decided (${perCsr(withDecided, none)})`,
      );
      out(
        `  ratio ours/reference: ${ratio(withPending, kcmPending)} pending, ${ratio(withDecided, kcmDecided)} decided`,
      );
      recordFigure({
        benchmark: 'approver',
        measure: `RSS with ${String(CACHE_CSRS)} pending CSRs (${label})`,
        ours: withPending,
        reference: kcmPending,
        unit: 'MiB',
      });
      recordFigure({
        benchmark: 'approver',
        measure: `RSS with ${String(CACHE_CSRS)} decided CSRs (${label})`,
        ours: withDecided,
        reference: kcmDecided,
        unit: 'MiB',
      });
    });
  } finally {
    floor.kill();
    await account.delete();
  }
  out();
}

/** A valid request followed by junk up to `bytes`: the apiserver stores it whole (Go's PEM decoder ignores the rest). */
function hostileRequest(bytes: number): string {
  const pem = buildCertificationRequest(
    { commonName: `${run}-hostile`, organizations: [] },
    generateKeyPair('ecdsa-p256'),
  );
  return Buffer.concat([Buffer.from(pem), Buffer.alloc(Math.max(0, bytes - pem.length), 'A')]).toString('base64');
}

async function benchHostile(cluster: TargetCluster, clock: ApprovalClock, dir: string): Promise<void> {
  const { target, admin, endpoint, certificates } = cluster;
  const mib = (HOSTILE_BYTES / 2 ** 20).toFixed(2);
  out(`## ${String(HOSTILE_CSRS)} hostile pending CSRs of ${mib} MiB each, and new CSRs decided meanwhile`);
  const signerName = `kubeconfig-rotator.bench/${run}-hostile`;
  const [account, token, reference] = await Promise.all([
    approverAccount(target, signerName, dir),
    createBootstrapToken(admin),
    referenceSide(cluster),
  ]);
  // No policy applies to the admin who creates the hostile CSRs: they stay pending, the worst case.
  const policy =
    writeKubeletMount(join(dir, 'hostile-policy'), {
      'policy.yaml': [
        `signerName: ${signerName}`,
        'policies:',
        '  - name: plain',
        `    bootstrap: { groups: ['${token.group}'] }`,
        `    identity: { commonNames: ['${run}-*'] }`,
        '',
      ].join('\n'),
    })['policy.yaml'] ?? '';
  const start = () =>
    new ApproverProcess({
      account,
      policy,
      logDir: dir,
      cli: join(COMPILED, 'cli.js'),
      nodeOptions: NODE_OPTIONS,
      args: ['--kube-api-qps', String(QPS), '--kube-api-burst', String(BURST)],
    });
  const ours: Side = {
    name: 'kubeconfig-rotator approver, policy without review',
    requester: kubeConfigFor(endpoint, { token: token.value }),
    signerName,
    subject: () => ({ commonName: `${run}-${uniqueName('agent')}`, organizations: [] }),
  };
  const synced = (approver: ApproverProcess, count: number) =>
    eventually(
      async () => {
        const ready = await approver.get('/readyz');
        if (!ready.body.includes(`synced, ${String(count)} CSRs`)) throw new Error(ready.body);
      },
      { timeoutMs: 600_000, intervalMs: 1_000 },
    );
  const hostile: string[] = [];
  let approver = start();
  try {
    await approver.waitForLog((line) => line.msg === 'started leading');
    const request = hostileRequest(HOSTILE_BYTES);
    const createdAt = performance.now();
    // Few at a time: each create carries a megabyte through the apiserver into etcd.
    await withWorkers(Array.from({ length: HOSTILE_CSRS }), 8, async () => {
      const name = uniqueName(run);
      hostile.push(name);
      await certificates.createCertificateSigningRequest({
        body: {
          metadata: { name, labels: { [HOSTILE_LABEL]: run } },
          spec: { request, signerName, usages: ['client auth'], expirationSeconds: 3600 },
        },
      });
    });
    out(`creating them took ${((performance.now() - createdAt) / 1000).toFixed(1)} s`);
    await synced(approver, HOSTILE_CSRS);
    const budget = (how: string, rss: number) => {
      out(
        `approver RSS with them ${how}: ${rss.toFixed(1)} MiB (${rss < RSS_BUDGET_MIB ? 'below' : 'ABOVE'} the ${String(RSS_BUDGET_MIB)} MiB budget)`,
      );
    };
    const watched = await settledRss(approver.child.pid ?? 0);
    budget('received by the watch', watched);
    const [referenceLatency = [], ourLatency = []] = await latencies([reference, ours], clock, HOSTILE_LATENCY_CSRS);
    const [p50, p99] = [0.5, 0.99].map((q) => [quantile(ourLatency, q), quantile(referenceLatency, q)] as const);
    out(
      `decision latency meanwhile over ${String(HOSTILE_LATENCY_CSRS)} CSRs each: ours p50 ${ms(p50?.[0] ?? Number.NaN)}, p99 ${ms(p99?.[0] ?? Number.NaN)}; kube-controller-manager p50 ${ms(p50?.[1] ?? Number.NaN)}, p99 ${ms(p99?.[1] ?? Number.NaN)} (ratio p50 ${ratio(p50?.[0] ?? Number.NaN, p50?.[1] ?? Number.NaN)}, p99 ${ratio(p99?.[0] ?? Number.NaN, p99?.[1] ?? Number.NaN)})`,
    );
    await approver.stop();
    // Restarted: the cache is filled by a paged list, as after any restart or failover.
    approver = start();
    await synced(approver, HOSTILE_CSRS + HOSTILE_LATENCY_CSRS + 5);
    const listed = await settledRss(approver.child.pid ?? 0);
    budget('after a restart (paged list)', listed);
    recordFigure({
      benchmark: 'approver',
      measure: `RSS with ${String(HOSTILE_CSRS)} pending CSRs of ${mib} MiB (vs the budget)`,
      ours: Math.max(watched, listed),
      reference: RSS_BUDGET_MIB,
      unit: 'MiB',
    });
  } finally {
    await approver.stop();
    // One by one: a collection delete answers with every deleted object, a gigabyte here.
    await withWorkers(hostile, 8, (name) =>
      certificates.deleteCertificateSigningRequest({ name }).catch((error: unknown) => {
        if (statusCode(error) !== 404) throw error;
      }),
    );
    await account.delete();
  }
  out();
}

/**
 * Pending CSRs of two kinds, each of its own signer and cached by its own approver started afresh (a paged list, as
 * after a restart): ordinary requests, and requests of under 16 KiB carrying 1,400 empty extensions, both created
 * by a requester no policy applies to (they stay pending: the worst case). RSS above the same approver with no CSRs.
 */
async function benchManyExtensions(cluster: TargetCluster, dir: string): Promise<void> {
  const { target, certificates } = cluster;
  out(
    `## ${String(EXTENSION_CSRS)} pending CSRs carrying ${String(EXTENSIONS)} extensions each, beside ${String(EXTENSION_CSRS)} ordinary pending CSRs`,
  );
  const kinds = [
    {
      label: 'ordinary',
      request: buildCertificationRequest(
        { commonName: `${run}-ordinary`, organizations: [] },
        generateKeyPair('ecdsa-p256'),
      ),
    },
    {
      label: `${String(EXTENSIONS)} extensions`,
      request: requestPem({ keys: keyPair('p256'), extensions: emptyExtensions(EXTENSIONS) }),
    },
  ].map((kind, index) => ({ ...kind, signerName: `kubeconfig-rotator.bench/${run}-kind-${String(index)}` }));
  const accounts = await Promise.all(kinds.map((kind) => approverAccount(target, kind.signerName, dir)));
  const rssWith = async (index: number, expected: number) => {
    const kind = kinds[index] ?? assert.fail('no such kind');
    const policy =
      writeKubeletMount(join(dir, `extensions-policy-${String(index)}`), {
        'policy.yaml': [
          `signerName: ${kind.signerName}`,
          'policies:',
          '  - name: plain',
          `    bootstrap: { groups: ['${run}-bootstrappers'] }`,
          `    identity: { commonNames: ['${run}-*'] }`,
          '',
        ].join('\n'),
      })['policy.yaml'] ?? '';
    const approver = new ApproverProcess({
      account: accounts[index] ?? assert.fail('no account'),
      policy,
      logDir: dir,
      cli: join(COMPILED, 'cli.js'),
      nodeOptions: NODE_OPTIONS,
    });
    try {
      await eventually(
        async () => {
          const ready = await approver.get('/readyz');
          if (!ready.body.includes(`synced, ${String(expected)} CSRs`)) throw new Error(ready.body);
        },
        { timeoutMs: 600_000, intervalMs: 1_000 },
      ).catch((error: unknown) => {
        throw new Error(
          `not synced; the approver's log ends:\n${readFileSync(approver.logFile, 'utf8').slice(-3000)}`,
          {
            cause: error,
          },
        );
      });
      // Long enough for the Unprocessed events (1,000 wait at most, at 20/s) to drain.
      await sleep(expected === 0 ? 10_000 : 60_000);
      return await settledRss(approver.child.pid ?? 0);
    } finally {
      await approver.stop();
    }
  };
  try {
    const idle = await rssWith(0, 0);
    const createdAt = performance.now();
    for (const kind of kinds) {
      const request = Buffer.from(kind.request).toString('base64');
      await withWorkers(Array.from({ length: EXTENSION_CSRS }), CONCURRENCY, () =>
        certificates.createCertificateSigningRequest({
          body: {
            metadata: { name: uniqueName(run), labels: { [HOSTILE_LABEL]: run } },
            spec: { request, signerName: kind.signerName, usages: ['client auth'], expirationSeconds: 3600 },
          },
        }),
      );
    }
    out(
      `requests of ${String(kinds[0]?.request.length)} and ${String(kinds[1]?.request.length)} bytes of PEM; creating them took ${((performance.now() - createdAt) / 1000).toFixed(1)} s`,
    );
    const ordinary = await rssWith(0, EXTENSION_CSRS);
    const extensions = await rssWith(1, EXTENSION_CSRS);
    const perCsr = (rss: number) => ((rss - idle) * 1024) / EXTENSION_CSRS;
    const cost = perCsr(extensions) / perCsr(ordinary);
    out(`approver with no CSRs: ${idle.toFixed(1)} MiB`);
    out(
      `approver with ${String(EXTENSION_CSRS)} ordinary pending CSRs: ${ordinary.toFixed(1)} MiB (${perCsr(ordinary).toFixed(2)} KiB per CSR)`,
    );
    out(
      `approver with ${String(EXTENSION_CSRS)} pending CSRs of ${String(EXTENSIONS)} extensions: ${extensions.toFixed(1)} MiB (${perCsr(extensions).toFixed(2)} KiB per CSR)`,
    );
    out(
      `  ratio per CSR, ${String(EXTENSIONS)} extensions / ordinary: ${cost.toFixed(2)} (${cost <= EXTENSION_COST_BOUND ? 'within' : 'ABOVE'} the bound of ${String(EXTENSION_COST_BOUND)})`,
    );
    recordFigure({
      benchmark: 'approver',
      measure: `RSS with ${String(EXTENSION_CSRS)} pending CSRs of ${String(EXTENSIONS)} extensions (vs as many ordinary ones)`,
      ours: extensions,
      reference: ordinary,
      unit: 'MiB',
    });
  } finally {
    await certificates.deleteCollectionCertificateSigningRequest({ labelSelector: `${HOSTILE_LABEL}=${run}` });
    await Promise.all(accounts.map((account) => account.delete()));
  }
  out();
}

async function main(): Promise<void> {
  out(`# approver benchmarks (${new Date().toISOString()}, Node ${process.version}, ${String(cpus().length)} CPUs)`);
  out();
  out(
    `Client rate limits: both sides ${String(QPS)} requests/s, burst ${String(BURST)}. kube-controller-manager runs with its defaults`,
  );
  out(
    '(--kube-api-qps=20 --kube-api-burst=30; csrapproving has a client and a limiter of its own, 5 workers); ours with',
  );
  out(
    `--kube-api-qps ${String(QPS)} --kube-api-burst ${String(BURST)} --workers 5 (a limiter of that size for its decisions, and one each for its watch,`,
  );
  out(
    'its Lease and its Events, as kube-controller-manager gives its controllers, informers and leader election a client',
  );
  out(
    'each). Per CSR the reference makes one SubjectAccessReview and one approval update; so does ours under a policy',
  );
  out(
    'with subjectAccessReview, and only the update without. Decision latency is measured by one watch in this process,',
  );
  out('from the CSR appearing (ADDED) to the Approved condition appearing, on the same stream and clock.');
  out(
    `The approver runs compiled (as in its image)${NODE_OPTIONS.length === 0 ? ' with Node defaults' : `, node ${NODE_OPTIONS.join(' ')}`}.`,
  );
  out();
  execFileSync(join(REPO, 'node_modules', '.bin', 'tsc'), [
    '-p',
    join(REPO, 'tsconfig.build.json'),
    '--outDir',
    COMPILED,
    '--sourceMap',
    'false',
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'kcr-bench-approver-'));
  try {
    await globalSetup();
    const cluster = targetCluster();
    const clock = approvalClock(cluster);
    try {
      if (PARTS.has('latency') || PARTS.has('burst')) await benchAgainstReference(cluster, clock, dir);
      if (PARTS.has('cache')) await benchCache(cluster, dir);
      if (PARTS.has('hostile')) await benchHostile(cluster, clock, dir);
      if (PARTS.has('extensions')) await benchManyExtensions(cluster, dir);
    } finally {
      await clock.stop();
      await deleteRunCsrs(cluster);
    }
  } finally {
    await globalTeardown();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
