// The decisions of check --config and check --approver-policy, and the CSR history both checks read.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  alertsCheck,
  bootstrapCredentialCheck,
  bootstrapKubeconfigCheck,
  decisionsOn,
  injectorWebhookCheck,
  labelSelectorString,
  otherApproversCheck,
  policyFileCheck,
  publishedCheck,
  rbacCheck,
  targetEndpointCheck,
  type CsrSeen,
} from '../../../../src/core/check/in-cluster.ts';

describe('publishedCheck', () => {
  it('passes only above the renewal margin, and fails an expired or nearly expired credential', () => {
    const read = (secondsLeft: number) => ({ result: 'read', identity: 'CN=a', secondsLeft }) as const;
    assert.equal(publishedCheck('east', 'Secret ns/x', 420, read(421)).status, 'pass');
    const near = publishedCheck('east', 'Secret ns/x', 420, read(420));
    assert.equal(near.status, 'fail');
    assert.match(near.detail, /renewal is failing/);
    assert.match(publishedCheck('east', 'Secret ns/x', 420, read(-5)).detail, /expired 5 s ago/);
    assert.equal(publishedCheck('east', 'directory /o', 420, { result: 'notMounted' }).status, 'warn');
    assert.equal(publishedCheck('east', 'Secret ns/x', 420, { result: 'absent' }).status, 'fail');
    const quoted = publishedCheck(
      'east',
      'Secret ns/x',
      420,
      { result: 'absent' },
      {
        reason: 'CertificateDenied',
        message: 'east: CSR c was denied: PolicyDenied',
      },
    );
    assert.match(
      quoted.fix ?? '',
      /latest Warning Event says why \(CertificateDenied: east: CSR c was denied: PolicyDenied\)/,
    );
  });
});

describe('bootstrapCredentialCheck', () => {
  it('a refused bootstrap token is expected once a valid credential is published', () => {
    const refused = { result: 'refused', message: 'HTTP 401' } as const;
    assert.equal(bootstrapCredentialCheck('east', 'certificate', refused, true).status, 'pass');
    const failed = bootstrapCredentialCheck('east', 'certificate', refused, false);
    assert.equal(failed.status, 'fail');
    assert.match(failed.detail, /--enable-bootstrap-token-auth/);
    assert.match(failed.fix ?? '', /kubeconfig-rotator check --source-name/);
    assert.equal(
      bootstrapCredentialCheck('east', 'token', { result: 'reviewed', username: 'u' }, false).status,
      'pass',
    );
  });
});

describe('bootstrapKubeconfigCheck and targetEndpointCheck', () => {
  it('a missing bootstrap kubeconfig fails unless a valid credential is published', () => {
    assert.equal(bootstrapKubeconfigCheck('east', '/b', { result: 'absent', publishedValid: false }).status, 'fail');
    assert.equal(bootstrapKubeconfigCheck('east', '/b', { result: 'absent', publishedValid: true }).status, 'warn');
  });

  it('an unreachable target fails in a pod (the sidecar connects from there)', () => {
    const endpoint = { server: 'https://t:6443', tlsServerName: undefined };
    assert.equal(
      targetEndpointCheck('east', endpoint, { result: 'unreachable', message: 'ECONNREFUSED' }).status,
      'fail',
    );
    assert.equal(targetEndpointCheck('east', endpoint, { result: 'answered' }).status, 'pass');
  });
});

describe('rbacCheck', () => {
  it('lists every access denied or not asked', () => {
    const result = rbacCheck('ServiceAccount ns/sa', [
      { access: { verb: 'create', resource: 'events', namespace: 'ns' }, allowed: true },
      { access: { verb: 'update', resource: 'secrets', namespace: 'ns', name: 'x' }, allowed: false },
      { access: { verb: 'get', resource: 'secrets', namespace: 'ns', name: 'x' }, allowed: 'HTTP 403' },
    ]);
    assert.equal(result.status, 'fail');
    assert.match(result.detail, /update secrets\/x in ns: denied; get secrets\/x in ns: not asked \(HTTP 403\)/);
  });
});

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

describe('policyFileCheck', () => {
  it('fails an invalid file and warns an empty one', () => {
    assert.equal(policyFileCheck('/p', { ok: false, problems: ['policies[0]: bad'] }).status, 'fail');
    assert.equal(policyFileCheck('/p', { ok: true, policies: [] }).status, 'warn');
    assert.equal(policyFileCheck('/p', { ok: true, policies: ['west'] }).status, 'pass');
  });
});

describe('alertsCheck', () => {
  it('passes without the CRD, warns a CRD without our rule, passes with it', () => {
    const absent = alertsCheck('source', { result: 'noCrd' });
    assert.equal(absent.status, 'pass');
    assert.match(absent.detail, /keep prometheusRule\.enabled and serviceMonitor\.enabled off/);
    const missing = alertsCheck('target', { result: 'crd', rules: [] });
    assert.equal(missing.status, 'warn');
    assert.match(missing.fix ?? '', /helm upgrade kubeconfig-rotator-approver with prometheusRule\.enabled=true/);
    assert.equal(alertsCheck('source', { result: 'crd', rules: ['ns/r'] }).status, 'pass');
    assert.equal(alertsCheck('source', { result: 'unreadable', message: 'HTTP 403' }).status, 'fail');
  });
});

describe('labelSelectorString and injectorWebhookCheck', () => {
  it("writes a namespaceSelector as a list's label selector", () => {
    assert.equal(
      labelSelectorString({
        matchLabels: { 'kubeconfig-rotator.io/injection': 'enabled' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['a', 'b'] },
          { key: 'skip', operator: 'DoesNotExist' },
        ],
      }),
      'kubeconfig-rotator.io/injection=enabled,tier in (a,b),!skip',
    );
    assert.equal(labelSelectorString({}), '');
  });

  it("passes an answer (injected or refused), fails the apiserver's call failing, warns an unchanged pod", () => {
    assert.equal(injectorWebhookCheck('w', { result: 'injected', namespace: 'a' }).status, 'pass');
    assert.equal(
      injectorWebhookCheck('w', { result: 'denied', namespace: 'a', message: 'unknown target' }).status,
      'pass',
    );
    const failed = injectorWebhookCheck('w', { result: 'failed', namespace: 'a', message: 'x509: unknown authority' });
    assert.equal(failed.status, 'fail');
    assert.match(failed.detail, /x509/);
    assert.match(failed.fix ?? '', /caBundle of MutatingWebhookConfiguration w/);
    assert.equal(injectorWebhookCheck('w', { result: 'unchanged', namespace: 'a' }).status, 'warn');
    assert.equal(injectorWebhookCheck('w', { result: 'noNamespace', selector: 'x=y' }).status, 'warn');
  });
});
