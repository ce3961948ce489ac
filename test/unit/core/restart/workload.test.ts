import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeWorkload, RESTARTED_AT_ANNOTATION, restartPatch } from '../../../../src/core/restart/workload.ts';

describe('the restart patch', () => {
  it("sets the pod template's restartedAt annotation to the rotation time, as kubectl writes it (RFC 3339, UTC, seconds)", () => {
    assert.equal(RESTARTED_AT_ANNOTATION, 'kubectl.kubernetes.io/restartedAt');
    assert.deepEqual(restartPatch(Date.parse('2026-12-02T07:30:15.987Z')), {
      spec: {
        template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-12-02T07:30:15Z' } } },
      },
    });
  });

  it('is the same for the same rotation, so a retry rolls nothing more; another rotation a second later differs', () => {
    const at = Date.parse('2026-12-02T07:30:15Z');
    assert.deepEqual(restartPatch(at), restartPatch(at + 999));
    assert.notDeepEqual(restartPatch(at), restartPatch(at + 1000));
  });

  it('names the workload by kind, namespace and name', () => {
    assert.equal(
      describeWorkload({ kind: 'StatefulSet', namespace: 'argocd', name: 'app-controller' }),
      'StatefulSet argocd/app-controller',
    );
  });
});
