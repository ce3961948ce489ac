// The guardrail `bootstrap --credential token` installs in the target: a ValidatingAdmissionPolicy (and its
// binding) per source that refuses, for that source's ServiceAccount, any TokenRequest longer than the
// maximum, not bound to the lease Secret, or for an audience not allowed; refuses that ServiceAccount
// tokens for any other account; and refuses, to anyone, a legacy token Secret (kubernetes.io/service-account-
// token) for it, whose token the controller fills in, never expires and outlives revoke. RBAC already limits
// the account to its own tokens; the policy also holds when someone grants it (or anyone) more. It bounds what
// a leaked token can mint: successors like itself, revoked with the lease.
import { MANAGED_BY, SOURCE_LABEL, type KubeObject } from './plan.ts';
import type { TokenIdentity } from './token-plan.ts';

export interface GuardrailSettings {
  /** The longest token any request may ask for. */
  readonly maxExpirationSeconds: number;
  /** Every audience a token may name (the apiserver fills in its own when a request names none). */
  readonly audiences: readonly string[];
}

const LEGACY_TOKEN_TYPE = 'kubernetes.io/service-account-token';
const SERVICE_ACCOUNT_ANNOTATION = 'kubernetes.io/service-account.name';

/** A CEL string literal: JSON's escapes are CEL's for every character (\", \\, \uXXXX). */
const celString = (value: string): string => JSON.stringify(value);

export const guardrailName = (source: string, identity: TokenIdentity): string =>
  `kcr-token-guardrail.${source}.${identity.namespace}`;

export function tokenGuardrailObjects(
  source: string,
  identity: TokenIdentity,
  settings: GuardrailSettings,
): KubeObject[] {
  const name = guardrailName(source, identity);
  const labels = { ...MANAGED_BY, [SOURCE_LABEL]: source };
  const account = `${identity.namespace}/${identity.serviceAccount}`;
  const user = celString(`system:serviceaccount:${identity.namespace}:${identity.serviceAccount}`);
  const forThisAccount = `request.namespace == ${celString(identity.namespace)} && request.name == ${celString(identity.serviceAccount)}`;
  const allowed = `[${settings.audiences.map(celString).join(', ')}]`;
  const max = String(settings.maxExpirationSeconds);
  return [
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name, labels },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['serviceaccounts/token'] },
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['secrets'] },
          ],
        },
        matchConditions: [
          {
            name: 'tokens-of-or-by-this-source',
            expression: `request.resource.resource != 'serviceaccounts' || (${forThisAccount}) || request.userInfo.username == ${user}`,
          },
          {
            name: 'legacy-token-secrets-of-this-account',
            expression: `request.resource.resource != 'secrets' || (request.namespace == ${celString(identity.namespace)} && has(object.type) && object.type == ${celString(LEGACY_TOKEN_TYPE)} && has(object.metadata.annotations) && ${celString(SERVICE_ACCOUNT_ANNOTATION)} in object.metadata.annotations && object.metadata.annotations[${celString(SERVICE_ACCOUNT_ANNOTATION)}] == ${celString(identity.serviceAccount)})`,
          },
        ],
        variables: [{ name: 'tokenRequest', expression: "request.resource.resource == 'serviceaccounts'" }],
        validations: [
          {
            expression: 'variables.tokenRequest',
            message: `no Secret of type ${LEGACY_TOKEN_TYPE} for ServiceAccount ${account}: its token would never expire and would survive revoke`,
          },
          {
            expression: `!variables.tokenRequest || request.userInfo.username != ${user} || (${forThisAccount})`,
            message: `ServiceAccount ${account} may request tokens for itself only`,
          },
          {
            expression: `!variables.tokenRequest || object.spec.expirationSeconds <= ${max}`,
            messageExpression: `'tokens of ${account} last at most ${max} s; this request asks for ' + string(object.spec.expirationSeconds) + ' s'`,
          },
          {
            // Every level tested: an unbound request may still carry an empty reference.
            expression: `!variables.tokenRequest || (has(object.spec.boundObjectRef) && has(object.spec.boundObjectRef.kind) && object.spec.boundObjectRef.kind == 'Secret' && has(object.spec.boundObjectRef.name) && object.spec.boundObjectRef.name == ${celString(identity.leaseSecret)})`,
            message: `tokens of ${account} must be bound to Secret ${identity.leaseSecret} (deleting it revokes them all)`,
          },
          {
            expression: `!variables.tokenRequest || object.spec.audiences.all(audience, audience in ${allowed})`,
            message: `tokens of ${account} may name only the audiences ${settings.audiences.join(', ')}`,
          },
        ],
      },
    },
    {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name, labels },
      spec: { policyName: name, validationActions: ['Deny'] },
    },
  ];
}
