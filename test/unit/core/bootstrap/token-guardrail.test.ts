// The guardrail's policy as data: what it matches and checks is tested against a real apiserver in
// test/integration/token-mode.test.ts; here, that every value reaches CEL as a literal, never as code.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { guardrailName, tokenGuardrailObjects } from '../../../../src/core/bootstrap/token-guardrail.ts';
import { tokenIdentity } from '../../../../src/core/bootstrap/token-plan.ts';

const identity = tokenIdentity('west', 'agents');

interface Policy {
  readonly kind: string;
  readonly spec: {
    readonly policyName?: string;
    readonly matchConditions?: { readonly expression: string }[];
    readonly validations?: { readonly expression: string; readonly message?: string }[];
  };
}

describe('token guardrail', () => {
  const [policy, binding] = tokenGuardrailObjects('west', identity, {
    maxExpirationSeconds: 3600,
    audiences: ['https://kubernetes.default.svc', 'say "hi" \\ ]'],
  }) as unknown as [Policy, Policy];

  it('one policy per source, bound to deny', () => {
    assert.equal(guardrailName('west', identity), 'kcr-token-guardrail.west.agents');
    assert.equal(policy.kind, 'ValidatingAdmissionPolicy');
    assert.equal(binding.kind, 'ValidatingAdmissionPolicyBinding');
    assert.equal(binding.spec.policyName, 'kcr-token-guardrail.west.agents');
  });

  it('matches tokens of the ServiceAccount and tokens it asks for, and legacy token Secrets for it (issue 22)', () => {
    assert.deepEqual(
      policy.spec.matchConditions?.map((condition) => condition.expression),
      [
        'request.resource.resource != \'serviceaccounts\' || (request.namespace == "agents" && request.name == "kcr-west") || request.userInfo.username == "system:serviceaccount:agents:kcr-west"',
        'request.resource.resource != \'secrets\' || (request.namespace == "agents" && has(object.type) && object.type == "kubernetes.io/service-account-token" && has(object.metadata.annotations) && "kubernetes.io/service-account.name" in object.metadata.annotations && object.metadata.annotations["kubernetes.io/service-account.name"] == "kcr-west")',
      ],
    );
  });

  it('quotes audiences as CEL string literals, escapes included', () => {
    const audiences = policy.spec.validations?.find((rule) => rule.expression.includes('audiences'));
    assert.equal(
      audiences?.expression,
      '!variables.tokenRequest || object.spec.audiences.all(audience, audience in ["https://kubernetes.default.svc", "say \\"hi\\" \\\\ ]"])',
    );
  });
});
