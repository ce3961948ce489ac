// Following one object through the informer, and waiting for a condition on it, with a scripted list+watch
// source in manual time. The CSR wait and the Secret sink run on it against the real apiserver in the
// sidecar integration tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { objectInformer, until, type ObjectInformerOptions } from '../../../../src/io/kube/until.ts';
import { createLogger } from '../../../../src/io/log.ts';
import { ManualClock } from '../../../support/manual-clock.ts';
import { ScriptedApi, type Obj } from '../../../support/scripted-list-watch.ts';

function setup() {
  const clock = new ManualClock();
  const api = new ScriptedApi();
  const restarts: string[] = [];
  const options: ObjectInformerOptions<Obj> = {
    source: api,
    name: 'wanted',
    describe: 'object wanted',
    logger: createLogger({ name: 'test', level: 'silent' }),
    clock,
    random: () => 1,
    backoff: { initialMs: 500, maxMs: 4_000 },
    onRestart: (reason, error) => restarts.push(`${reason}: ${error instanceof Error ? error.message : 'none'}`),
  };
  return { clock, api, options, restarts };
}

/** The value once it is `ready`; undefined (keep waiting) before. */
const whenReady = (object: Obj | undefined) =>
  object?.value === 'ready' ? `ready at ${object.metadata.resourceVersion}` : undefined;

describe('until', () => {
  it('resolves from the first list when the object already satisfies the condition, and stops its informer', async () => {
    const { clock, api, options } = setup();
    api.put('wanted', 'ready');
    const waiting = until(options, whenReady, new AbortController().signal);
    await clock.advance(0);
    assert.equal(await waiting, 'ready at 101');
    assert.equal(api.lists, 1);
    assert.ok(
      api.watches.every((watch) => watch.aborted),
      'no watch is left open',
    );
    assert.equal(clock.pending, 0, 'no timer is left behind');
  });

  it('waits through changes that do not satisfy it, seeing a missing or deleted object as undefined', async () => {
    const { clock, api, options } = setup();
    const states: string[] = [];
    const waiting = until(
      options,
      (object) => {
        states.push(object?.value ?? 'absent');
        return whenReady(object);
      },
      new AbortController().signal,
    );
    await clock.advance(0);
    api.current.emit('ADDED', api.put('other', 'ready'));
    api.current.emit('ADDED', api.put('wanted', 'pending'));
    api.current.emit('DELETED', api.objects.get('wanted'));
    api.current.emit('ADDED', api.put('wanted', 'ready'));
    await clock.advance(0);
    assert.equal(await waiting, 'ready at 103');
    assert.deepEqual(states, ['absent', 'pending', 'absent', 'ready'], 'the other object is not the one followed');
    assert.equal(clock.pending, 0);
  });

  it('keeps going through failing lists with the informer backoff, reporting each failure', async () => {
    const { clock, api, options, restarts } = setup();
    api.put('wanted', 'ready');
    api.failLists = 2;
    const waiting = until(options, whenReady, new AbortController().signal);
    await clock.advance(0);
    await clock.advance(500);
    assert.equal(api.lists, 2, 'relisted after the first backoff');
    await clock.advance(1_000);
    assert.equal(await waiting, 'ready at 101');
    assert.deepEqual(restarts, ['error: connection refused', 'error: connection refused']);
  });

  it('resolves with undefined when its signal aborts first, and stops its informer', async () => {
    const { clock, api, options } = setup();
    api.put('wanted', 'pending');
    const stop = new AbortController();
    const waiting = until(options, whenReady, stop.signal);
    await clock.advance(0);
    stop.abort();
    assert.equal(await waiting, undefined);
    assert.ok(api.current.aborted);
    assert.equal(clock.pending, 0);
  });

  it('does not start at all on a signal that has already aborted', async () => {
    const { api, options } = setup();
    assert.equal(await until(options, whenReady, AbortSignal.abort()), undefined);
    assert.equal(api.lists, 0);
  });

  it('ends the wait with the error of a condition that throws', async () => {
    const { clock, api, options } = setup();
    api.put('wanted', 'pending');
    const waiting = until(
      options,
      () => {
        throw new Error('cannot judge this object');
      },
      new AbortController().signal,
    );
    const rejected = assert.rejects(waiting, /^Error: cannot judge this object$/);
    await clock.advance(0);
    await rejected;
    assert.equal(clock.pending, 0);
  });
});

describe('the object informer', () => {
  it('reports the state after each complete list (once for the first) and each change, until stopped', async () => {
    const { clock, api, options } = setup();
    api.put('wanted', 'v1');
    const states: string[] = [];
    const informer = objectInformer(options, (object) => states.push(object?.value ?? 'absent'));
    informer.start();
    await clock.advance(0);
    api.current.emit('MODIFIED', api.put('wanted', 'v2'));
    // An expired resourceVersion: the relist finds the object gone.
    api.objects.delete('wanted');
    api.current.emit('ERROR', { code: 410 });
    // The relist comes after the backoff's first pause (at most 800 ms).
    await clock.advance(800);
    assert.equal(api.lists, 2);
    assert.deepEqual(states, ['v1', 'v2', 'absent', 'absent']);
    await informer.stop();
    assert.equal(clock.pending, 0);
  });
});
