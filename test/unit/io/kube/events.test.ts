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
});
