// The event recorder never fails its caller; a refusal (403) is a missing grant, reported once as a warning.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Logger } from '../../../../src/io/log.ts';
import { KubeApiError } from '../../../../src/io/kube/errors.ts';
import { kubeEventRecorder } from '../../../../src/io/kube/events.ts';

function recordingLogger() {
  const lines: { level: string; msg: string }[] = [];
  const at = (level: string) => (_fields: unknown, msg: string) => {
    lines.push({ level, msg });
  };
  return { lines, logger: { debug: at('debug'), warn: at('warn') } as unknown as Logger };
}

const involved = { apiVersion: 'v1', kind: 'Pod', name: 'agent-1', namespace: 'agents' };

describe('event recorder', () => {
  it('warns once when events are refused (403), naming what to grant; other failures stay at debug', async () => {
    const { lines, logger } = recordingLogger();
    let failure: Error = new KubeApiError('create event', { code: 403, reason: 'Forbidden' });
    const recorder = kubeEventRecorder({
      api: { create: () => Promise.reject(failure), bump: () => Promise.resolve() },
      component: 'kubeconfig-rotator-sidecar',
      instance: 'agent-1',
      involved,
      logger,
    });
    recorder.normal('CertificateRotated', 'one');
    recorder.warning('RotationFailed', 'two');
    await recorder.flush();
    failure = new Error('connection reset');
    recorder.normal('CertificateRotated', 'three');
    await recorder.flush();
    assert.deepEqual(
      lines.map((line) => line.level),
      ['warn', 'debug', 'debug'],
    );
    assert.match(lines[0]?.msg ?? '', /grant create and patch on events .* injector\.agentServiceAccounts/);
  });

  /** A recorder on a fake API and a clock whose wall time and monotonic time the test sets apart. */
  function aggregating() {
    const calls: string[] = [];
    const time = { wall: Date.parse('2026-01-01T00:00:00Z'), monotonic: 0 };
    let created = 0;
    const recorder = kubeEventRecorder({
      api: {
        create: (_namespace, event) => {
          calls.push(`create ${String(event.reason)} at ${(event.lastTimestamp as Date).toISOString()}`);
          return Promise.resolve({ metadata: { name: `agent-1.${String(++created)}` } });
        },
        bump: (_namespace, name, patch) => {
          calls.push(`bump ${name} to ${String(patch.count)} at ${patch.lastTimestamp.toISOString()}`);
          return Promise.resolve();
        },
      },
      component: 'kubeconfig-rotator-sidecar',
      instance: 'agent-1',
      involved,
      logger: recordingLogger().logger,
      clock: { now: () => time.wall, monotonic: () => time.monotonic },
      aggregationWindowMs: 10 * 60_000,
    });
    return { calls, time, recorder };
  }

  it('bumps the count of a repeat within the window, stamped with the wall clock, and creates one after it', async () => {
    const { calls, time, recorder } = aggregating();
    recorder.normal('CertificateRotated', 'rotated');
    await recorder.flush();
    time.wall += 5 * 60_000;
    time.monotonic += 5 * 60_000;
    recorder.normal('CertificateRotated', 'rotated');
    await recorder.flush();
    time.wall += 10 * 60_000;
    time.monotonic += 10 * 60_000;
    recorder.normal('CertificateRotated', 'rotated');
    await recorder.flush();
    assert.deepEqual(calls, [
      'create CertificateRotated at 2026-01-01T00:00:00.000Z',
      'bump agent-1.1 to 2 at 2026-01-01T00:05:00.000Z',
      'create CertificateRotated at 2026-01-01T00:15:00.000Z',
    ]);
  });

  it('measures the window on monotonic time: a wall clock set back an hour does not make a repeat recent', async () => {
    const { calls, time, recorder } = aggregating();
    recorder.warning('RotationFailed', 'refused');
    await recorder.flush();
    time.wall -= 60 * 60_000;
    time.monotonic += 11 * 60_000;
    recorder.warning('RotationFailed', 'refused');
    await recorder.flush();
    assert.deepEqual(calls, [
      'create RotationFailed at 2026-01-01T00:00:00.000Z',
      'create RotationFailed at 2025-12-31T23:00:00.000Z',
    ]);
  });
});
