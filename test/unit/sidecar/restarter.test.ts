// The restart action without a cluster: a manual clock, a patcher the test scripts, and what the restarter
// reports. Checks that each workload is rolled once per rotation, retried with backoff, and that a newer
// rotation replaces an older one still due.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { RESTARTED_AT_ANNOTATION, type Workload } from '../../../src/core/restart/workload.ts';
import { WorkloadRestarter, type RestartObserver } from '../../../src/sidecar/restarter.ts';
import { ManualClock, settle } from '../../support/manual-clock.ts';

const deployment: Workload = { kind: 'Deployment', namespace: 'argocd', name: 'server' };
const statefulSet: Workload = { kind: 'StatefulSet', namespace: 'argocd', name: 'application-controller' };

const forbidden = () =>
  new ApiException(403, 'Forbidden', JSON.stringify({ reason: 'Forbidden', message: 'cannot patch' }), {});

function setup(workloads: readonly Workload[] = [deployment, statefulSet]) {
  const clock = new ManualClock();
  /** Each patch sent: the workload's name and the annotation value. */
  const patches: string[] = [];
  /** Per workload name, what its next patches do (an error to throw, or a promise to wait for); then success. */
  const script = new Map<string, (Error | Promise<void>)[]>();
  const reports: string[] = [];
  const observer: RestartObserver = {
    restarted: (workload, rotatedAt) => reports.push(`restarted ${workload.name} for ${String(rotatedAt)}`),
    restartFailed: (event) =>
      reports.push(
        `${event.result} ${event.workload.name} #${String(event.failures)} retry in ${String(event.retryAt - clock.now())} ms`,
      ),
  };
  const restarter = new WorkloadRestarter({
    workloads,
    clock,
    // The largest draw: retry delays are exactly 2 s, 4 s, 8 s...
    random: () => 0.999999999,
    observer,
    patch: async (workload, body) => {
      const value = (body as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec
        .template.metadata.annotations[RESTARTED_AT_ANNOTATION];
      patches.push(`${workload.name} ${String(value)}`);
      const next = script.get(workload.name)?.shift();
      if (next instanceof Error) throw next;
      await next;
    },
  });
  const stop = new AbortController();
  const done = restarter.run(stop.signal);
  return { clock, patches, script, reports, restarter, stop, done };
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

describe('the restart action', () => {
  it('rolls every workload once per rotation, and nothing while no rotation is due', async () => {
    const { clock, patches, reports, restarter, stop, done } = setup();
    await clock.advance(60_000);
    assert.deepEqual(patches, []);
    const rotatedAt = clock.now();
    restarter.request(rotatedAt);
    await settle();
    assert.deepEqual(patches, [`server ${iso(rotatedAt)}`, `application-controller ${iso(rotatedAt)}`]);
    assert.deepEqual(reports, [
      `restarted server for ${String(rotatedAt)}`,
      `restarted application-controller for ${String(rotatedAt)}`,
    ]);
    await clock.advance(3_600_000);
    assert.equal(patches.length, 2, 'no second roll for the same rotation');
    assert.equal(clock.pending, 0, 'nothing due: no timer either');
    stop.abort();
    await done;
  });

  it('retries a failed patch after 2 s, 4 s with the same value, without holding up the other workloads', async () => {
    const { clock, patches, script, reports, restarter, stop, done } = setup();
    script.set('server', [forbidden(), new Error('connection reset')]);
    const rotatedAt = clock.now();
    restarter.request(rotatedAt);
    await settle();
    assert.deepEqual(reports, [
      'forbidden server #1 retry in 2000 ms',
      `restarted application-controller for ${String(rotatedAt)}`,
    ]);
    await clock.advance(1_999);
    assert.equal(patches.length, 2);
    await clock.advance(1);
    assert.equal(reports.at(-1), 'error server #2 retry in 4000 ms');
    await clock.advance(4_000);
    assert.equal(reports.at(-1), `restarted server for ${String(rotatedAt)}`);
    assert.deepEqual(patches, [
      `server ${iso(rotatedAt)}`,
      `application-controller ${iso(rotatedAt)}`,
      `server ${iso(rotatedAt)}`,
      `server ${iso(rotatedAt)}`,
    ]);
    stop.abort();
    await done;
  });

  it('a newer rotation replaces one still failing: its value is sent at once, and the older one never again', async () => {
    const { clock, patches, script, reports, restarter, stop, done } = setup([deployment]);
    script.set('server', [forbidden(), forbidden(), forbidden()]);
    const first = clock.now();
    restarter.request(first);
    await clock.advance(2_000);
    assert.equal(reports.at(-1), 'forbidden server #2 retry in 4000 ms');
    await clock.advance(1_000);
    const second = clock.now();
    restarter.request(second);
    await settle();
    assert.equal(reports.at(-1), 'forbidden server #1 retry in 2000 ms', 'a new rotation starts its own backoff');
    await clock.advance(2_000);
    assert.equal(reports.at(-1), `restarted server for ${String(second)}`);
    await clock.advance(60_000);
    assert.deepEqual(patches, [
      `server ${iso(first)}`,
      `server ${iso(first)}`,
      `server ${iso(second)}`,
      `server ${iso(second)}`,
    ]);
    stop.abort();
    await done;
  });

  it('a rotation published while a patch is in flight is rolled after it, not lost', async () => {
    const { clock, patches, script, reports, restarter, stop, done } = setup([deployment]);
    let release: () => void = () => undefined;
    script.set('server', [new Promise<void>((resolve) => (release = resolve))]);
    const first = clock.now();
    restarter.request(first);
    await settle();
    await clock.advance(5_000);
    const second = clock.now();
    restarter.request(second);
    release();
    await settle();
    assert.deepEqual(patches, [`server ${iso(first)}`, `server ${iso(second)}`]);
    assert.deepEqual(reports, [`restarted server for ${String(first)}`, `restarted server for ${String(second)}`]);
    stop.abort();
    await done;
  });

  it('stops on abort while waiting for a retry, leaving no timer', async () => {
    const { clock, script, restarter, stop, done } = setup([deployment]);
    script.set('server', [forbidden()]);
    restarter.request(clock.now());
    await settle();
    assert.equal(clock.pending, 1);
    stop.abort();
    await done;
    assert.equal(clock.pending, 0);
  });
});
