// The informer's recovery rules, driven through a scripted list+watch source in virtual time. The real
// apiserver is exercised by the approver integration tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
    await clock.advance(0);
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
    api.current.close(Object.assign(new Error('Internal Server Error'), { statusCode: 500 }));
    await clock.advance(500);
    assert.equal(api.lists, 6, 'one failure after a working watch waits only the first backoff step');
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
