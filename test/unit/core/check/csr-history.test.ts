// The CSR history: the decisions on the requesters' CSRs, and any not made by our approver.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decisionsOn, otherApproversCheck, type CsrSeen } from '../../../../src/core/check/csr-history.ts';

describe('decisionsOn and otherApproversCheck', () => {
  const csr = (name: string, username: string, groups: string[], reason: string): CsrSeen => ({
    name,
    username,
    groups,
    conditions: [{ type: 'Approved', status: 'True', reason, message: `by ${reason}` }],
  });
  const csrs = [
    csr('a', 'system:bootstrap:x', ['system:bootstrappers:kubeconfig-rotator:west'], 'PolicyApproved'),
    csr('b', 'system:bootstrap:y', ['system:bootstrappers:kubeconfig-rotator:west'], 'AutoApproved'),
    csr('c', 'kcr-agent-west', [], 'KubectlApprove'),
    csr('d', 'someone', ['other'], 'AutoApproved'),
  ];

  it("counts only the requesters' CSRs and fails on a decision with another approver's reason", () => {
    const seen = decisionsOn(csrs, {
      users: ['kcr-agent-west'],
      groups: ['system:bootstrappers:kubeconfig-rotator:west'],
    });
    assert.equal(seen.csrs, 3);
    const result = otherApproversCheck('source west', { result: 'listed', ...seen }, 'reasons PolicyApproved');
    assert.equal(result.status, 'fail');
    assert.match(
      result.detail,
      /2 CSR\(s\) of source west decided by another approver: b Approved with reason "AutoApproved" \(by AutoApproved\); c Approved/,
    );
    assert.doesNotMatch(result.detail, /\bd Approved/);
  });

  it('passes when every decision is ours', () => {
    const seen = decisionsOn(csrs.slice(0, 1), { users: [], groups: ['system:bootstrappers:kubeconfig-rotator:west'] });
    assert.equal(otherApproversCheck('source west', { result: 'listed', ...seen }, '').status, 'pass');
  });
});
