// What `check` observes of a token target after bootstrap (the source's ServiceAccount and its permission to
// request its own tokens, the guardrail on them) and of a federated one (a real token of the source's
// ServiceAccount in a SelfSubjectReview on the target).
import { AdmissionregistrationV1Api, AuthorizationV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { defaultAudience, defaultUserPrefix, parseServiceAccountRef } from '../core/bootstrap/federation.ts';
import { guardrailName } from '../core/bootstrap/token-guardrail.ts';
import { tokenIdentity } from '../core/bootstrap/token-plan.ts';
import type { CheckResult } from '../core/check/model.ts';
import {
  guardrailCheck,
  guardrailUnreadableCheck,
  issuerTrustCheck,
  tokenRequestCheck,
  tokenRequestUnreadableCheck,
  type IssuerTrial,
} from '../core/check/token.ts';
import { describeError } from '../io/kube/errors.ts';
import { abortable } from './abortable.ts';
import { reviewToken } from './bootstrap-token.ts';
import { bounded, readOptional } from './bounded.ts';
import type { CheckOptions } from './options.ts';

export async function tokenTargetChecks(target: KubeConfig, options: CheckOptions): Promise<CheckResult[]> {
  const identity = tokenIdentity(options.source, options.targetNamespace);
  return [await tokenRequest(target, identity), await guardrail(target, guardrailName(options.source, identity))];
}

type Identity = ReturnType<typeof tokenIdentity>;

/** The source's ServiceAccount, and a SubjectAccessReview as it for a token of its own. */
async function tokenRequest(target: KubeConfig, identity: Identity): Promise<CheckResult> {
  const account = `${identity.namespace}/${identity.serviceAccount}`;
  try {
    const serviceAccount = await readOptional(`ServiceAccount ${account}`, (signal) =>
      target
        .makeApiClient(CoreV1Api)
        .readNamespacedServiceAccount(
          { namespace: identity.namespace, name: identity.serviceAccount },
          abortable(signal),
        ),
    );
    const review = await bounded('SubjectAccessReview', (signal) =>
      target.makeApiClient(AuthorizationV1Api).createSubjectAccessReview(
        {
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user: `system:serviceaccount:${identity.namespace}:${identity.serviceAccount}`,
              groups: [
                'system:serviceaccounts',
                `system:serviceaccounts:${identity.namespace}`,
                'system:authenticated',
              ],
              resourceAttributes: {
                verb: 'create',
                resource: 'serviceaccounts',
                subresource: 'token',
                namespace: identity.namespace,
                name: identity.serviceAccount,
              },
            },
          },
        },
        abortable(signal),
      ),
    );
    return tokenRequestCheck(account, {
      exists: serviceAccount !== undefined,
      allowed: review.status?.allowed === true,
      reason: review.status?.reason ?? '',
    });
  } catch (error) {
    return tokenRequestUnreadableCheck(account, describeError(error));
  }
}

/** The guardrail's ValidatingAdmissionPolicy and its binding, both named `name`. */
async function guardrail(target: KubeConfig, name: string): Promise<CheckResult> {
  try {
    const api = target.makeApiClient(AdmissionregistrationV1Api);
    const policy = await readOptional(`ValidatingAdmissionPolicy ${name}`, (signal) =>
      api.readValidatingAdmissionPolicy({ name }, abortable(signal)),
    );
    const binding = await readOptional(`ValidatingAdmissionPolicyBinding ${name}`, (signal) =>
      api.readValidatingAdmissionPolicyBinding({ name }, abortable(signal)),
    );
    return guardrailCheck(name, { policy: policy !== undefined, binding: binding !== undefined });
  } catch (error) {
    return guardrailUnreadableCheck(name, describeError(error));
  }
}

/** A real token of the source's ServiceAccount, for the target's audience, in a SelfSubjectReview on the target. */
export async function issuerTrust(
  target: KubeConfig,
  source: KubeConfig | undefined,
  options: CheckOptions,
): Promise<CheckResult> {
  const audience = options.audience ?? defaultAudience(options.target);
  const userPrefix = options.userPrefix ?? defaultUserPrefix(options.source);
  const ref = options.serviceAccount === undefined ? undefined : parseServiceAccountRef(options.serviceAccount);
  const check = (trial: IssuerTrial) => issuerTrustCheck(options.serviceAccount, audience, userPrefix, trial);
  if (ref === undefined || source === undefined) return check({ result: 'notAsked' });
  let token: string;
  try {
    const response = await bounded('TokenRequest', (signal) =>
      source.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken(
        {
          namespace: ref.namespace,
          name: ref.name,
          // The shortest the API issues; bound to nothing, used once, by this process only.
          body: { spec: { audiences: [audience], expirationSeconds: 600 } },
        },
        abortable(signal),
      ),
    );
    token = response.status?.token ?? '';
    if (token === '') return check({ result: 'noToken', message: 'the TokenRequest returned no token' });
  } catch (error) {
    return check({ result: 'noToken', message: describeError(error) });
  }
  const trial = await reviewToken(target, token, options.now);
  switch (trial.result) {
    case 'reviewed':
      return check({ result: 'reviewed', username: trial.username });
    case 'refused':
      return check({ result: 'refused', message: trial.message });
    case 'error':
    case 'notCreated':
      return check({ result: 'error', message: trial.message });
  }
}
