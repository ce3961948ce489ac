// The informer's recovery rules, driven through a scripted list+watch source in virtual time. The real
// apiserver is exercised by the approver integration tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeApiError } from '../../../../src/io/kube/errors.ts';
import { createInformer } from '../../../../src/io/kube/informer.ts';
import { createLogger } from '../../../../src/io/log.ts';
import { ManualClock } from '../../../support/manual-clock.ts';
import { ScriptedApi, type Obj } from '../../../support/scripted-list-watch.ts';

/** Read through a call: the count changes behind the compiler's back while the clock advances. */
const listCount = (api: ScriptedApi) => api.lists;

function setup(options: { watchdogMs?: number; relistIntervalMs?: number; transform?: (object: Obj) => string } = {}) {
  const { transform = (object: Obj) => object.value, ...timing } = options;
  const clock = new ManualClock();
  const api = new ScriptedApi();
  const seen: string[] = [];
  const restarts: string[] = [];
  let syncs = 0;
  const informer = createInformer<Obj, string>({
    source: api,
    describe: 'test objects',
    key: (object) => object.metadata.name,
    version: (object) => object.metadata.resourceVersion,
    transform,
    handlers: {
      upsert: (key, record, previous) => seen.push(`${previous === undefined ? 'add' : 'update'} ${key}=${record}`),
      remove: (key) => seen.push(`remove ${key}`),
      synced: () => syncs++,
    },
    logger: createLogger({ name: 'test', level: 'silent' }),
    clock,
    random: () => 1,
    pageSize: 2,
    backoff: { initialMs: 500, maxMs: 4_000 },
    ...timing,
    onRestart: (reason) => restarts.push(reason),
  });
  return { clock, api, informer, seen, restarts, syncs: () => syncs };
}

describe('the informer', () => {
  it('lists every page, then applies watch events from the list resourceVersion', async () => {
    const { clock, api, informer, seen, syncs } = setup();
    for (const name of ['a', 'b', 'c', 'd', 'e']) api.put(name, `${name}1`);
    informer.start();
    await clock.advance(0);
    assert.equal(api.lists, 3, 'five objects in pages of two');
    assert.ok(informer.synced);
    assert.equal(syncs(), 1);
    assert.equal(api.current.from, '105');
    api.current.emit('MODIFIED', api.put('a', 'a2'));
    api.current.emit('DELETED', api.objects.get('b'));
    api.current.emit('BOOKMARK', { metadata: { resourceVersion: '200' } });
    api.current.emit('ADDED', api.put('f', 'f1'));
    assert.deepEqual(seen, [
      'add a=a1',
      'add b=b1',
      'add c=c1',
      'add d=d1',
      'add e=e1',
      'update a=a2',
      'remove b',
      'add f=f1',
    ]);
    assert.deepEqual([...informer.values()].sort(), ['a2', 'c1', 'd1', 'e1', 'f1']);
    assert.equal(informer.get('a'), 'a2');
    await informer.stop();
    assert.equal(clock.pending, 0, 'no timer is left behind');
  });

  it('resumes a watch that closed normally from the last resourceVersion, without listing again', async () => {
    const { clock, api, informer } = setup();
    api.put('a', 'a1');
    informer.start();
    await clock.advance(0);
    api.current.emit('ADDED', api.put('b', 'b1'));
    await clock.advance(5_000);
    api.current.close();
    await clock.advance(0);
    assert.equal(api.lists, 1);
    assert.deepEqual(
      api.watches.map((watch) => watch.from),
      ['101', '102'],
    );
    await informer.stop();
  });

  it('relists when the resourceVersion has expired, delivering only what changed and what vanished', async () => {
    const { clock, api, informer, seen, restarts } = setup();
    api.put('a', 'a1');
    api.put('b', 'b1');
    informer.start();
    await clock.advance(0);
    api.objects.delete('a');
    api.put('c', 'c1');
    api.current.emit('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    await clock.advance(499);
    assert.equal(api.lists, 1, 'not at once: after the first backoff pause');
    await clock.advance(1);
    assert.ok(
      !api.current.aborted && api.watches[0]?.aborted === true,
      'the old watch was stopped and a new one started',
    );
    assert.deepEqual(seen, ['add a=a1', 'add b=b1', 'add c=c1', 'remove a']);
    assert.deepEqual(restarts, [], 'an expired resourceVersion is routine, not a failure');
    await informer.stop();
  });

  it('after a failure it relists with a jittered exponential backoff, and resets it once a watch works', async () => {
    const { clock, api, informer, restarts } = setup();
    api.failLists = 4;
    informer.start();
    assert.equal(api.lists, 1);
    // random() = 1 gives the top of each jitter range: 500, 1000, 2000, 4000 ms.
    const listTimes: number[] = [0];
    while (clock.monotonic() < 8_000) {
      const before = api.lists;
      await clock.advance(250);
      if (listCount(api) > before) listTimes.push(clock.monotonic());
    }
    assert.deepEqual(listTimes, [0, 500, 1_500, 3_500, 7_500]);
    assert.deepEqual(restarts, ['error', 'error', 'error', 'error']);
    assert.ok(informer.synced);
    api.current.emit('BOOKMARK', { metadata: { resourceVersion: String(api.version) } });
    api.current.emit('ERROR', { kind: 'Status', code: 500, reason: 'InternalError' });
    await clock.advance(500);
    assert.equal(api.lists, 6, 'one failure after a watch delivered an event waits only the first backoff step');
    await informer.stop();
  });

  // Issue 22: 3,500 lists in 0.5 s against a source that always answered 410.
  it('relists after a 410 Gone (an ERROR event or the watch status) with a jittered, growing pause, never in a tight loop', async () => {
    const { clock, api, informer, restarts } = setup();
    informer.start();
    const listTimes: number[] = [];
    let expired = 0;
    while (clock.monotonic() < 20_000) {
      const before = api.lists;
      await clock.advance(100);
      if (listCount(api) > before) listTimes.push(clock.monotonic());
      const watch = api.watches.at(-1);
      if (watch !== undefined && !watch.aborted && api.watches.length > expired) {
        // Alternately as an ERROR event and as the watch request's own 410.
        if (expired++ % 2 === 0) watch.emit('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
        else watch.close(new KubeApiError('GET /test (watch)', { code: 410, reason: 'Expired' }));
      }
    }
    // The first list at 0; each watch expires at once (seen at the next 100 ms step), then random() = 1 gives
    // the top of each jitter range: 500 ms doubling to the 4 s cap of this setup.
    assert.deepEqual(listTimes, [600, 1_600, 3_600, 7_600, 11_600, 15_600, 19_600]);
    assert.deepEqual(restarts, [], 'routine, not a failure');
    await informer.stop();
  });

  it('resumes a watch cut off mid-stream from the last resourceVersion; cut off again before any event, it relists', async () => {
    const { clock, api, informer } = setup();
    api.put('a', 'a1');
    informer.start();
    await clock.advance(0);
    api.current.emit('ADDED', api.put('b', 'b1'));
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    api.current.close(reset);
    await clock.advance(1_000);
    assert.equal(api.lists, 1, 'resumed without a relist');
    assert.deepEqual(
      api.watches.map((watch) => watch.from),
      ['101', '102'],
    );
    api.current.close(reset);
    await clock.advance(1_000);
    assert.equal(api.lists, 2, 'no event since the last drop: relisted after a backoff');
    await informer.stop();
  });

  it('asks the watch cache for a periodic relist (not older than the last list), and for a fresh one after an expiry', async () => {
    const { clock, api, informer } = setup({ relistIntervalMs: 60_000 });
    for (const name of ['a', 'b', 'c']) api.put(name, `${name}1`);
    informer.start();
    await clock.advance(60_000);
    api.current.emit('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    await clock.advance(1_000);
    assert.deepEqual(api.listed, [
      { limit: 2 },
      { limit: 2, continue: '2' },
      { limit: 2, notOlderThan: '103' },
      { limit: 2, continue: '2' },
      { limit: 2 },
      { limit: 2, continue: '2' },
    ]);
    await informer.stop();
  });

  it('the watchdog aborts a watch whose start hangs, rather than leaking it', async () => {
    const { clock, api, informer, restarts } = setup({ watchdogMs: 60_000 });
    api.hangWatches = true;
    informer.start();
    await clock.advance(60_000);
    assert.deepEqual(restarts, ['watchdog']);
    assert.deepEqual(
      api.watchStarts.map((start) => start.aborted),
      [true, false],
      'the hanging start was aborted and a new one begun after the relist',
    );
    await informer.stop();
  });

  it('counts a slow but healthy paged relist as activity: the watchdog does not fire while pages come', async () => {
    const { clock, api, informer, restarts } = setup({ watchdogMs: 60_000 });
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) api.put(name, `${name}1`);
    // Three pages of two, each taking 40 s: 120 s of listing, a page heard every 40 s.
    api.listDelay = () => clock.sleep(40_000, new AbortController().signal);
    informer.start();
    await clock.advance(130_000);
    assert.ok(informer.synced);
    assert.deepEqual(restarts, []);
    assert.ok(informer.alive);
    api.listDelay = undefined;
    await informer.stop();
  });

  it('relists periodically even while the watch stays healthy', async () => {
    const { clock, api, informer, syncs } = setup({ relistIntervalMs: 60_000 });
    api.put('a', 'a1');
    informer.start();
    for (let i = 0; i < 30; i++) {
      await clock.advance(5_000);
      api.current.emit('BOOKMARK', { metadata: { resourceVersion: String(api.version) } });
    }
    assert.equal(syncs(), 3, 'at 0, 60 and 120 s');
    await informer.stop();
  });

  it('the watchdog relists a watch that went silent, and reports the informer dead if that does not help', async () => {
    const { clock, api, informer, restarts } = setup({ watchdogMs: 60_000 });
    informer.start();
    await clock.advance(0);
    api.hangLists = true;
    await clock.advance(75_000);
    assert.deepEqual(restarts, ['watchdog']);
    assert.equal(api.lists, 2, 'the silent watch was ended and a relist started');
    assert.ok(informer.alive, 'still given a chance');
    // The hanging list times out after a minute, then every relist hangs again: nothing is heard any more.
    await clock.advance(60_000);
    assert.ok(!informer.alive);
    api.hangLists = false;
    // The list that hangs since 120.5 s times out at 180.5 s; the next one, a second later, is answered.
    await clock.advance(50_000);
    assert.ok(informer.alive, 'alive again once the API answers');
    assert.deepEqual(restarts, ['watchdog', 'error', 'error']);
    await informer.stop();
  });

  it('refresh() relists and transforms again the stale records of unchanged objects, even mid-relist', async () => {
    const kept = new Set(['a']);
    const { clock, api, informer, seen } = setup({
      transform: (object) => (kept.has(object.metadata.name) ? object.value : 'dropped'),
    });
    for (const name of ['a', 'b', 'c']) api.put(name, `${name}1`);
    informer.start();
    // Asked while the first list is still being read: served by a relist after it.
    kept.add('b');
    informer.refresh((record) => record === 'dropped');
    await clock.advance(0);
    assert.equal(api.lists, 4, 'two lists of two pages');
    assert.deepEqual(seen, ['add a=a1', 'add b=b1', 'add c=dropped', 'update c=dropped']);
    seen.length = 0;
    kept.add('c');
    informer.refresh((record) => record === 'dropped');
    await clock.advance(0);
    assert.equal(api.lists, 6, 'the open watch was ended and one relist made');
    assert.deepEqual(seen, ['update c=c1'], 'a record the predicate does not name is kept as it was');
    assert.equal(informer.get('c'), 'c1');
    await clock.advance(5_000);
    assert.equal(api.lists, 6, 'then it watches again, with no further relist');
    await informer.stop();
    assert.equal(clock.pending, 0);
  });
});
