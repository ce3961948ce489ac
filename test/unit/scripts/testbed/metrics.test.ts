// Prometheus text exposition as the demo, the approver tests and the fleet benchmark read it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLabels, parseMetrics, sampleValue, total } from '../../../../scripts/testbed/metrics.ts';

const TEXT = [
  '# HELP kubeconfig_rotator_approver_decisions_total Decisions.',
  '# TYPE kubeconfig_rotator_approver_decisions_total counter',
  'kubeconfig_rotator_approver_decisions_total{policy="a",result="approved",dry_run="false"} 3',
  'kubeconfig_rotator_approver_decisions_total{policy="b",result="approved",dry_run="false"} 4',
  'kubeconfig_rotator_approver_decisions_total{policy="b",result="denied",dry_run="false"} 1',
  'kubeconfig_rotator_approver_leader 1',
  'apiserver_request_total{code="200",verb="GET"} 10 1700000000000',
  'apiserver_request_total{code="201",verb="POST"} 5',
  'escaped{reason="a \\"quoted\\"\\nline"} 2',
  '',
].join('\n');

describe('Prometheus text parsing', () => {
  const samples = parseMetrics(TEXT);

  it('reads every sample with its labels, skipping comments, a timestamp and blank lines', () => {
    assert.equal(samples.length, 7);
    assert.deepEqual(samples[0], {
      name: 'kubeconfig_rotator_approver_decisions_total',
      labels: { policy: 'a', result: 'approved', dry_run: 'false' },
      value: 3,
    });
    assert.deepEqual(samples[3], { name: 'kubeconfig_rotator_approver_leader', labels: {}, value: 1 });
    assert.deepEqual(samples[4], { name: 'apiserver_request_total', labels: { code: '200', verb: 'GET' }, value: 10 });
    assert.deepEqual(samples[6]?.labels, { reason: 'a "quoted"\nline' });
  });

  it('total sums the samples whose labels include the ones asked for', () => {
    assert.equal(total(samples, 'apiserver_request_total'), 15);
    assert.equal(total(samples, 'kubeconfig_rotator_approver_decisions_total', { result: 'approved' }), 7);
    assert.equal(total(samples, 'kubeconfig_rotator_approver_decisions_total', { result: 'unprocessed' }), 0);
  });

  it('sampleValue takes the one sample with exactly the labels asked for, 0 when there is none', () => {
    const name = 'kubeconfig_rotator_approver_decisions_total';
    assert.equal(sampleValue(samples, name, parseLabels('policy="b",result="approved",dry_run="false"')), 4);
    assert.equal(sampleValue(samples, name, parseLabels('result="approved",policy="b",dry_run="false"')), 4);
    assert.equal(sampleValue(samples, name, parseLabels('result="approved"')), 0);
    assert.equal(sampleValue(samples, name), 0);
    assert.equal(sampleValue(samples, 'kubeconfig_rotator_approver_leader', parseLabels('')), 1);
    assert.equal(sampleValue(samples, 'kubeconfig_rotator_approver_queue_depth'), 0);
  });
});
