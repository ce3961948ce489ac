// The ClusterProfile keeper's loop against an in-memory ClusterProfile API that checks resourceVersions as the
// apiserver does (the real API: test/integration/cluster-profile.test.ts): a conflict is read again and retried
// after the backoff, an unchanged status is never written, another manager's ClusterProfile is never written,
// and shutdown stops the loop.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  clusterProfilePath,
  clusterProfilesPath,
  type ClusterProfile,
} from '../../../src/core/cluster-profile/profile.ts';
import { KubeApiError } from '../../../src/io/kube/errors.ts';
import { noEvents } from '../../../src/io/kube/events.ts';
import type { KubeClient, Method, RequestParameters } from '../../../src/io/kube/rest.ts';
import { createLogger } from '../../../src/io/log.ts';
import { ClusterProfileKeeper } from '../../../src/sidecar/cluster-profile.ts';
import { ManualClock, settle } from '../../support/manual-clock.ts';

const ref = { namespace: 'fleet', name: 'east', displayName: 'east' };
const PATH = clusterProfilePath(ref);

/** One namespace of ClusterProfiles: GET, POST, PUT (spec) and PUT status, each checking the resourceVersion. */
class ProfileApi {
  stored: ClusterProfile | undefined;
  version = 10;
  /** The next PUTs meet someone else's write first (409). */
  conflicts = 0;
  readonly calls: string[] = [];

  request(method: Method, path: string, parameters: RequestParameters = {}): Promise<unknown> {
    this.calls.push(`${method} ${path.replace(PATH, '<profile>')}`);
    const fail = (code: number, reason: string) =>
      Promise.reject(new KubeApiError(`${method} ${path}`, { code, reason }));
    if (method === 'GET' && path === PATH)
      return this.stored === undefined ? fail(404, 'NotFound') : Promise.resolve(structuredClone(this.stored));
    if (method === 'POST' && path === clusterProfilesPath(ref.namespace)) {
      if (this.stored !== undefined) return fail(409, 'AlreadyExists');
      const body = parameters.body as ClusterProfile;
      return Promise.resolve(this.#store({ ...body, metadata: { ...body.metadata, generation: 1 } }));
    }
    if (method === 'PUT' && (path === PATH || path === `${PATH}/status`)) {
      const body = parameters.body as ClusterProfile;
      if (this.conflicts > 0) {
        this.conflicts--;
        this.version++;
        return fail(409, 'Conflict');
      }
      if (this.stored === undefined) return fail(404, 'NotFound');
      if (body.metadata.resourceVersion !== this.stored.metadata.resourceVersion) return fail(409, 'Conflict');
      // The status subresource changes only the status; the main resource everything else.
      const next =
        path === PATH
          ? { ...body, ...(this.stored.status === undefined ? {} : { status: this.stored.status }) }
          : { ...this.stored, ...(body.status === undefined ? {} : { status: body.status }) };
      return Promise.resolve(this.#store(next));
    }
    return fail(400, 'BadRequest');
  }

  #store(profile: ClusterProfile): ClusterProfile {
    this.stored = { ...profile, metadata: { ...profile.metadata, resourceVersion: String(++this.version) } };
    return structuredClone(this.stored);
  }

  get writes(): string[] {
    return this.calls.filter((call) => !call.startsWith('GET'));
  }
}

/** Read through a call: TypeScript would keep the narrowing of an assignment the keeper changed since. */
const storedOf = (api: ProfileApi): ClusterProfile | undefined => api.stored;

function keeper(api: ProfileApi, clock: ManualClock) {
  const source: KubeClient = {
    config: { server: 'https://source.example', insecureSkipTlsVerify: false, user: {} },
    request: <T>(method: Method, path: string, parameters?: RequestParameters) =>
      api.request(method, path, parameters) as Promise<T>,
    watch: () => Promise.reject(new Error('no watches here')),
    close: () => Promise.resolve(),
  };
  return new ClusterProfileKeeper({
    source,
    ref,
    targetStatus: () => ({ name: 'east', ready: true, detail: 'CN=agent serial 1' }),
    cluster: () => ({ server: 'https://east.example', caPem: 'CA' }),
    // The target is never asked here: its health stays "not checked yet".
    targetClient: () => undefined,
    access: { ours: { directory: '/out/east', target: 'east' }, secretreader: undefined },
    intervalMs: 30_000,
    clock,
    random: () => 0.5,
    logger: createLogger({ name: 'test', level: 'silent' }),
    events: noEvents,
  });
}

async function running(api: ProfileApi, test: (clock: ManualClock, stop: () => Promise<void>) => Promise<void>) {
  const clock = new ManualClock();
  const controller = new AbortController();
  const loop = keeper(api, clock).run(controller.signal);
  const stop = async () => {
    controller.abort();
    await loop;
    assert.equal(clock.pending, 0, 'a sleeper outlived the shutdown');
  };
  try {
    await test(clock, stop);
  } finally {
    if (!controller.signal.aborted) await stop();
  }
}

describe('ClusterProfile keeper', () => {
  it('creates the ClusterProfile, writes its status once, and writes nothing more while nothing changes', async () => {
    const api = new ProfileApi();
    await running(api, async (clock) => {
      await settle();
      assert.deepEqual(api.writes, [`POST ${clusterProfilesPath('fleet')}`, 'PUT <profile>/status']);
      assert.equal(api.stored?.status?.conditions?.find((condition) => condition.type === 'Joined')?.status, 'True');
      await clock.advance(5 * 30_000);
      assert.deepEqual(api.writes, [`POST ${clusterProfilesPath('fleet')}`, 'PUT <profile>/status']);
      assert.equal(api.calls.filter((call) => call === 'GET <profile>').length, 6, 'one read per health check');
    });
  });

  it('a conflict is read again and retried after the backoff, with the resourceVersion just read', async () => {
    const api = new ProfileApi();
    api.conflicts = 2;
    await running(api, async (clock) => {
      await settle();
      // Create, then the first status write meets a conflict and waits (100 ms at random 0.5: 75 ms).
      assert.deepEqual(api.writes, [`POST ${clusterProfilesPath('fleet')}`, 'PUT <profile>/status']);
      await clock.advance(74);
      assert.equal(api.writes.length, 2, 'retried before the backoff');
      await clock.advance(1);
      // Second conflict, then 200 ms * 0.75 = 150 ms more, then the write succeeds.
      await clock.advance(150);
      assert.deepEqual(api.calls, [
        'GET <profile>',
        `POST ${clusterProfilesPath('fleet')}`,
        'PUT <profile>/status',
        'GET <profile>',
        'PUT <profile>/status',
        'GET <profile>',
        'PUT <profile>/status',
      ]);
      assert.ok(api.stored?.status?.conditions !== undefined);
    });
  });

  it("another manager's ClusterProfile is never written, and is reported as the keeper's refusal", async () => {
    const api = new ProfileApi();
    api.stored = {
      apiVersion: 'multicluster.x-k8s.io/v1alpha1',
      kind: 'ClusterProfile',
      metadata: { name: 'east', namespace: 'fleet', resourceVersion: '5' },
      spec: { clusterManager: { name: 'open-cluster-management' } },
    };
    const clock = new ManualClock();
    const controller = new AbortController();
    const subject = keeper(api, clock);
    const loop = subject.run(controller.signal);
    await settle();
    await clock.advance(3 * 30_000);
    assert.deepEqual(api.writes, []);
    assert.match(subject.refusal ?? '', /belongs to the cluster manager "open-cluster-management"/);
    // Gone, then ours: the refusal clears at the next look.
    api.stored = undefined;
    await clock.advance(30_000);
    assert.equal(subject.refusal, undefined);
    assert.equal(storedOf(api)?.spec.clusterManager.name, 'kubeconfig-rotator');
    controller.abort();
    await loop;
    assert.equal(clock.pending, 0);
  });

  it('a failing source API is retried with growing backoff, at most the health interval apart', async () => {
    const api = new ProfileApi();
    const working = api.request.bind(api);
    const attempts: number[] = [];
    let failing = true;
    const clock = new ManualClock();
    api.request = (method, path, parameters) => {
      if (!failing) return working(method, path, parameters);
      attempts.push(clock.monotonic());
      return Promise.reject(new Error('connect ECONNREFUSED'));
    };
    const controller = new AbortController();
    const loop = keeper(api, clock).run(controller.signal);
    await settle();
    await clock.advance(60_000);
    // 1 s, 2 s, 4 s... times 0.75 (random 0.5), capped at the 30 s health interval (its own looks come between).
    const gaps = attempts.slice(1).map((at, index) => at - (attempts[index] ?? 0));
    assert.deepEqual(gaps.slice(0, 5), [750, 1_500, 3_000, 6_000, 12_000]);
    assert.ok(
      gaps.every((gap) => gap <= 30_000),
      `gaps ${gaps.join(', ')}`,
    );
    failing = false;
    await clock.advance(30_000);
    assert.ok(api.stored?.status !== undefined, 'written once the API is back');
    controller.abort();
    await loop;
    assert.equal(clock.pending, 0);
  });
});
