// The controller's plumbing through its small interfaces (cache, writer, reviewer, events), in virtual time.
// Writing to a real apiserver is covered by test/integration/approver.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1CertificateSigningRequest } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { ApproverController, type Condition, type WriteOutcome } from '../../../src/approver/controller.ts';
import { approverMetrics } from '../../../src/approver/metrics.ts';
import {
  csrRecord,
  isUnread,
  keptBytes,
  type CsrRecord,
  type CurrentPolicy,
} from '../../../src/core/policy/csr-record.ts';
import type { ReviewAttributes } from '../../../src/core/policy/evaluate.ts';
import type { Requester } from '../../../src/core/policy/request-checks.ts';
import { parsePolicyFile, type PolicyFile } from '../../../src/core/policy/schema.ts';
import { createLogger } from '../../../src/io/log.ts';
import { BOOTSTRAP, csrObject as csr, GROUP, policyFile } from '../../support/approver-csr.ts';
import { emptyExtensions } from '../../support/hostile-csr.ts';
import { ManualClock } from '../../support/manual-clock.ts';

/** The fakes behind the controller's interfaces, and what they saw. */
function setup(options: { policy?: PolicyFile; workers?: number; logLines?: string[] } = {}) {
  const clock = new ManualClock();
  const cache = new Map<string, CsrRecord>();
  const writes: { name: string; condition: Condition }[] = [];
  const events: string[] = [];
  const reviews: { user: string; attributes: ReviewAttributes }[] = [];
  const behaviour: { writeFailures: number; writeOutcome: WriteOutcome; review: () => Promise<boolean> } = {
    writeFailures: 0,
    writeOutcome: 'written',
    review: () => Promise.resolve(true),
  };
  let policy: CurrentPolicy = { file: options.policy ?? policyFile(), generation: 1 };
  const registry = new Registry();
  const controller: ApproverController = new ApproverController({
    policy: () => policy,
    writer: {
      write: (target, condition) => {
        if (behaviour.writeFailures > 0) {
          behaviour.writeFailures--;
          return Promise.reject(new Error('connection reset'));
        }
        assert.equal(target.metadata?.managedFields, undefined, 'managedFields are not sent back');
        writes.push({ name: target.name, condition });
        return Promise.resolve(behaviour.writeOutcome);
      },
    },
    reviewer: {
      allowed: (requester, attributes) => {
        reviews.push({ user: requester.username, attributes });
        return behaviour.review();
      },
    },
    events: {
      normal: (reason, message, involved) => events.push(`Normal ${reason} ${String(involved?.name)}: ${message}`),
      warning: (reason, message, involved) => events.push(`Warning ${reason} ${String(involved?.name)}: ${message}`),
      flush: () => Promise.resolve(),
    },
    metrics: approverMetrics(registry, {
      queueDepth: () => controller.queueDepth,
      cache: () => controller.cacheStats,
    }),
    logger:
      options.logLines === undefined
        ? createLogger({ name: 'test', level: 'silent' })
        : createLogger({ name: 'test', destination: { write: (line: string) => options.logLines?.push(line) } }),
    workers: options.workers ?? 2,
    clock,
  });
  controller.attach({ get: (name) => cache.get(name), values: () => cache.values() });
  const objects = new Map<string, V1CertificateSigningRequest>();
  // As the informer stores an object: transformed under the policy of the moment.
  const put = (object: V1CertificateSigningRequest) => {
    const record = csrRecord(object, policy);
    objects.set(record.name, object);
    const previous = cache.get(record.name);
    cache.set(record.name, record);
    controller.handlers.upsert(record.name, record, previous);
    return record;
  };
  const metric = async (name: string) =>
    (await registry.getSingleMetricAsString(`kubeconfig_rotator_approver_${name}`))
      .split('\n')
      .filter((line) => !line.startsWith('#'));
  // As run.ts reloads a policy: the controller is told, and the informer's refresh transforms unread CSRs again.
  const setPolicy = (file: PolicyFile, refresh = true) => {
    policy = { file, generation: policy.generation + 1 };
    controller.policyChanged();
    if (refresh)
      for (const record of [...cache.values()].filter(isUnread))
        put(objects.get(record.name) ?? assert.fail('no object'));
  };
  return { clock, cache, controller, writes, events, reviews, behaviour, put, metric, setPolicy };
}

describe('the approver controller', () => {
  it('approves a pending CSR within policy once, and counts, times and records it', async () => {
    const { clock, controller, writes, events, put, metric } = setup();
    controller.lead();
    const record = put(csr());
    await clock.advance(0);
    const [write, ...others] = writes;
    assert.ok(write !== undefined && others.length === 0);
    assert.equal(write.condition.type, 'Approved');
    assert.match(write.condition.message, /^policy cluster-a allows a first certificate for "agent-a"/);
    controller.handlers.synced();
    put(csr({ cn: 'agent-b' }));
    controller.handlers.upsert(record.name, record);
    await clock.advance(0);
    assert.deepEqual(
      writes.map((write) => write.name),
      [record.name, 'csr-2'],
      'the first one is not written again before the cache catches up',
    );
    assert.deepEqual(events, [
      `Normal Approved ${record.name}: approved by policy cluster-a (firstCertificate)`,
      'Normal Approved csr-2: approved by policy cluster-a (firstCertificate)',
    ]);
    assert.deepEqual(await metric('decisions_total'), [
      'kubeconfig_rotator_approver_decisions_total{policy="cluster-a",result="approved",reason="firstCertificate",dry_run="false"} 2',
    ]);
    assert.ok(
      (await metric('decision_latency_seconds')).includes(
        'kubeconfig_rotator_approver_decision_latency_seconds_bucket{le="2",result="approved"} 2',
      ),
    );
    assert.deepEqual(await metric('leader'), ['kubeconfig_rotator_approver_leader 1']);
  });

  it('skips CSRs already approved, denied or failed', async () => {
    const { clock, controller, writes, events, put } = setup();
    controller.lead();
    for (const type of ['Approved', 'Denied', 'Failed']) put(csr({ conditions: [{ type }] }));
    await clock.advance(0);
    assert.deepEqual([writes, events], [[], []]);
  });

  it('writes nothing while following, and decides every pending CSR once it leads', async () => {
    const { clock, controller, writes, put } = setup();
    put(csr());
    put(csr());
    await clock.advance(0);
    assert.equal(writes.length, 0);
    controller.lead();
    await clock.advance(0);
    assert.equal(writes.length, 2);
  });

  it('logs how long deciding, the review and the write took, on the injected monotonic clock', async () => {
    const logLines: string[] = [];
    const { clock, controller, behaviour, put } = setup({
      policy: policyFile('    subjectAccessReview: true'),
      logLines,
    });
    behaviour.review = () => clock.sleep(2_000, new AbortController().signal).then(() => true);
    controller.lead();
    put(csr());
    await clock.advance(2_000);
    await controller.drained();
    const written = logLines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.msg === 'decision written');
    assert.deepEqual(
      { durationMs: written?.durationMs, reviewMs: written?.reviewMs, writeMs: written?.writeMs },
      { durationMs: 2_000, reviewMs: 2_000, writeMs: 0 },
    );
  });

  it('losing the lease stops work at once: a decision still under review is never written', async () => {
    const { clock, controller, writes, behaviour, put, metric } = setup({
      policy: policyFile('    subjectAccessReview: true'),
    });
    let answer: (allowed: boolean) => void = () => undefined;
    behaviour.review = () => new Promise((resolve) => (answer = resolve));
    controller.lead();
    put(csr());
    await clock.advance(0);
    controller.follow();
    answer(true);
    await controller.drained();
    assert.equal(writes.length, 0);
    assert.deepEqual(await metric('leader'), ['kubeconfig_rotator_approver_leader 0']);
    assert.equal(controller.queueDepth, 0);
  });

  it('a policy removed while its SubjectAccessReview is asked approves nothing: the CSR is evaluated again', async () => {
    const { clock, controller, writes, events, reviews, behaviour, put, setPolicy } = setup({
      policy: policyFile('    subjectAccessReview: true'),
    });
    let answer: (allowed: boolean) => void = () => undefined;
    behaviour.review = () => new Promise((resolve) => (answer = resolve));
    controller.lead();
    const record = put(csr());
    await clock.advance(0);
    assert.equal(reviews.length, 1);
    const withoutPolicy = parsePolicyFile('policies: []\n');
    assert.ok(withoutPolicy.ok);
    setPolicy(withoutPolicy.value);
    answer(true);
    await clock.advance(0);
    assert.deepEqual(writes, []);
    assert.deepEqual(events, [
      `Warning Unprocessed ${record.name}: no approver policy applies to this requester; left pending`,
    ]);
  });

  it('asks the SubjectAccessReview the policy wants, and denies naming it when refused', async () => {
    const { clock, controller, writes, reviews, behaviour, put } = setup({
      policy: policyFile('    subjectAccessReview: true'),
    });
    behaviour.review = () => Promise.resolve(false);
    controller.lead();
    put(csr());
    await clock.advance(0);
    assert.deepEqual(reviews, [
      {
        user: BOOTSTRAP.username,
        attributes: {
          verb: 'create',
          group: 'certificates.k8s.io',
          resource: 'certificatesigningrequests',
          subresource: 'kubeconfig-rotator',
          name: 'cluster-a',
        },
      },
    ]);
    const [write] = writes;
    assert.equal(write?.condition.type, 'Denied');
    assert.match(write.condition.message, /cluster-a: subjectAccessReview: the requester may not create/);
  });

  it('an API failure is retried with backoff and counted, never turned into a denial', async () => {
    const { clock, controller, writes, behaviour, put, metric } = setup({
      policy: policyFile('    subjectAccessReview: true'),
    });
    let reviewFailures = 1;
    behaviour.review = () => (reviewFailures-- > 0 ? Promise.reject(new Error('timeout')) : Promise.resolve(true));
    behaviour.writeFailures = 2;
    controller.lead();
    put(csr());
    await clock.advance(0);
    assert.equal(writes.length, 0);
    assert.equal(controller.queueDepth, 1, 'waiting for its retry');
    await clock.advance(1_000);
    await clock.advance(2_000);
    assert.equal(writes.length, 0, 'the third attempt waits 4 s');
    await clock.advance(4_000);
    assert.deepEqual(
      writes.map((write) => write.condition.type),
      ['Approved'],
    );
    assert.deepEqual(await metric('errors_total'), [
      'kubeconfig_rotator_approver_errors_total{operation="review"} 1',
      'kubeconfig_rotator_approver_errors_total{operation="write"} 2',
    ]);
  });

  it('a CSR decided by someone else meanwhile is left alone and not counted', async () => {
    const { clock, controller, events, behaviour, put, metric } = setup();
    behaviour.writeOutcome = 'alreadyDecided';
    controller.lead();
    put(csr());
    await clock.advance(0);
    assert.deepEqual(events, []);
    assert.deepEqual(await metric('decisions_total'), []);
  });

  it('reports an unprocessed CSR once per policy generation, and decides it when a new policy applies', async () => {
    const stranger: Requester = {
      username: 'system:bootstrap:zzzzzz',
      groups: ['system:bootstrappers', 'system:bootstrappers:kcr:other'],
    };
    const { clock, controller, writes, events, put, setPolicy, metric } = setup();
    controller.lead();
    const record = put(csr({ requester: stranger }));
    await clock.advance(0);
    controller.handlers.synced();
    await clock.advance(0);
    assert.equal(writes.length, 0);
    assert.deepEqual(events, [
      `Warning Unprocessed ${record.name}: no approver policy applies to this requester; left pending`,
    ]);
    assert.deepEqual(await metric('decisions_total'), [
      'kubeconfig_rotator_approver_decisions_total{policy="",result="unprocessed",reason="noPolicy",dry_run="false"} 1',
    ]);
    const parsed = parsePolicyFile(`
policies:
  - name: other
    bootstrap: { groups: ['system:bootstrappers:kcr:other'] }
    identity: { commonNames: ['agent-*'], organizations: [team-a] }
`);
    assert.ok(parsed.ok);
    setPolicy(parsed.value);
    await clock.advance(0);
    assert.deepEqual(
      writes.map((write) => write.condition.reason),
      ['PolicyApproved'],
    );
  });

  describe('a CSR no policy could apply to is never read (issue 22)', () => {
    const stranger: Requester = {
      username: 'system:bootstrap:zzzzzz',
      groups: ['system:bootstrappers', 'system:bootstrappers:kcr:other'],
    };
    const junk = (object: V1CertificateSigningRequest, bytes: number) => {
      object.spec.request = Buffer.alloc(bytes, 'A').toString('base64');
      return object;
    };

    it('keeps a few hundred bytes of it whatever its request, reports it unprocessed once, and counts it', async () => {
      const { clock, controller, events, put, metric } = setup();
      controller.lead();
      const records = [
        put(csr({ requester: stranger, request: { extensions: emptyExtensions(1_400) } })),
        put(junk(csr({ requester: stranger }), 1 << 20)),
      ];
      for (const record of records) {
        assert.equal(record.pending?.read, false);
        assert.ok(keptBytes(record) < 400, `${String(keptBytes(record))} bytes kept`);
      }
      await clock.advance(0);
      controller.handlers.synced();
      await clock.advance(0);
      assert.equal(events.length, 2);
      assert.match(events[0] ?? '', /Unprocessed/);
      const [decided, read, unread] = await metric('cache_csrs');
      assert.deepEqual(
        [decided, read, unread],
        [
          'kubeconfig_rotator_approver_cache_csrs{kept="decided"} 0',
          'kubeconfig_rotator_approver_cache_csrs{kept="read"} 0',
          'kubeconfig_rotator_approver_cache_csrs{kept="unread"} 2',
        ],
      );
      const bytes = Number((await metric('cache_bytes')).at(2)?.split(' ')[1]);
      assert.ok(bytes > 0 && bytes < 800, `unread: ${String(bytes)} bytes`);
    });

    it('with denyUnmatched it is denied unread; the writer gets no metadata and reads it again', async () => {
      const parsed = parsePolicyFile(`
denyUnmatched: true
policies:
  - name: cluster-a
    bootstrap: { groups: ['${GROUP}'] }
    identity: { commonNames: ['agent-*'] }
`);
      assert.ok(parsed.ok);
      const { clock, controller, writes, put } = setup({ policy: parsed.value });
      controller.lead();
      const record = put(junk(csr({ requester: stranger }), 1 << 20));
      assert.equal(record.pending?.write.metadata, undefined);
      await clock.advance(0);
      assert.deepEqual(
        writes.map((write) => write.condition.message),
        [
          'denied by kubeconfig-rotator approver: policy.unmatched: no policy applies to requester "system:bootstrap:zzzzzz"',
        ],
      );
    });

    it('a requester a policy applies to has its request read: 1,400 extensions are denied naming the limit', async () => {
      const { clock, controller, writes, put } = setup();
      controller.lead();
      const record = put(csr({ request: { extensions: emptyExtensions(1_400) } }));
      assert.ok(keptBytes(record) < 2_048, `${String(keptBytes(record))} bytes kept`);
      await clock.advance(0);
      assert.match(writes[0]?.condition.message ?? '', /request\.size: more than the limit of 16 extensions/);
    });

    it('after a policy change it waits until the cache has read it under the new policy', async () => {
      const { clock, controller, writes, events, put, setPolicy, cache } = setup();
      controller.lead();
      const record = put(csr({ requester: stranger }));
      await clock.advance(0);
      const parsed = parsePolicyFile(`
policies:
  - name: other
    bootstrap: { groups: ['system:bootstrappers:kcr:other'] }
    identity: { commonNames: ['agent-*'], organizations: [team-a] }
`);
      assert.ok(parsed.ok);
      setPolicy(parsed.value, false);
      await clock.advance(0);
      assert.equal(writes.length, 0, 'judged under the old policy: not decided');
      assert.equal(events.length, 1, 'nor reported again');
      const object = csr({ requester: stranger });
      put({ ...object, metadata: { ...object.metadata, name: record.name, uid: record.uid } });
      assert.equal(cache.get(record.name)?.pending?.read, true);
      await clock.advance(0);
      assert.deepEqual(
        writes.map((write) => write.condition.reason),
        ['PolicyApproved'],
      );
    });
  });

  it('a dry-run decision is reported once and never written', async () => {
    const { clock, controller, writes, events, put } = setup({ policy: policyFile('    dryRun: true') });
    controller.lead();
    const record = put(csr({ cn: 'intruder' }));
    await clock.advance(0);
    controller.handlers.synced();
    await clock.advance(0);
    assert.deepEqual(writes, []);
    assert.deepEqual(events, [`Warning DryRunDenied ${record.name}: dry run: would deny: failed identity.commonName`]);
  });

  it('a resync does not ask again the SubjectAccessReview of a dry-run decision already reported', async () => {
    const { clock, controller, writes, events, reviews, put } = setup({
      policy: policyFile('    dryRun: true\n    subjectAccessReview: true'),
    });
    controller.lead();
    const record = put(csr());
    await clock.advance(0);
    controller.handlers.synced();
    await clock.advance(0);
    controller.handlers.synced();
    await clock.advance(0);
    assert.equal(reviews.length, 1);
    assert.deepEqual(writes, []);
    assert.deepEqual(events, [
      `Normal DryRunApproved ${record.name}: dry run: policy cluster-a would approve (firstCertificate)`,
    ]);
  });

  it('many pending CSRs over several workers: each is written exactly once', async () => {
    const { clock, controller, writes, put } = setup({ workers: 5 });
    controller.lead();
    const names = Array.from({ length: 200 }, () => put(csr()).name);
    controller.handlers.synced();
    for (const name of names.slice(0, 50))
      put({ ...csr(), metadata: { name, uid: `uid-${name}`, resourceVersion: '2' } });
    await clock.advance(0);
    assert.equal(writes.length, 200);
    assert.equal(new Set(writes.map((write) => write.name)).size, 200);
  });
});
