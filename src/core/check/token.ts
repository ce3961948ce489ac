// `check`'s decisions on a token target (its ServiceAccount may request its own tokens; the guardrail on them is
// in place) and on a federated one (it trusts the source's ServiceAccount tokens).
import { reviewFailedCheck, token, unreadableCheck } from './common.ts';
import { pass, problem, type CheckResult } from './model.ts';

const tokenRequestBase = (account: string) =>
  token('token-request', `ServiceAccount ${account} may request its own tokens`);

/** The TokenRequest check when the ServiceAccount could not be read or the SubjectAccessReview not made. */
export function tokenRequestUnreadableCheck(account: string, message: string): CheckResult {
  const what = `ServiceAccount ${account} (and create a SubjectAccessReview)`;
  return unreadableCheck(tokenRequestBase(account), what, 'target', message);
}

/** The ServiceAccount exists and may request tokens for itself (a SubjectAccessReview as it). */
export function tokenRequestCheck(
  account: string,
  seen: { readonly exists: boolean; readonly allowed: boolean; readonly reason: string },
): CheckResult {
  const base = tokenRequestBase(account);
  const rerun = 'run kubeconfig-rotator bootstrap --credential token for this source again (it creates both)';
  if (!seen.exists) return problem('fail', base, `no ServiceAccount ${account} in the target`, rerun);
  return seen.allowed
    ? pass(base.id, base.group, base.title, 'create serviceaccounts/token on itself is allowed')
    : problem(
        'fail',
        base,
        `create serviceaccounts/token on itself is not allowed${seen.reason === '' ? '' : ` (${seen.reason})`}`,
        rerun,
      );
}

const guardrailBase = (name: string) => token('guardrail', `the token guardrail ${name} is in place`);

/** The guardrail check when its ValidatingAdmissionPolicy or binding could not be read (not a 404). */
export function guardrailUnreadableCheck(name: string, message: string): CheckResult {
  return unreadableCheck(guardrailBase(name), `ValidatingAdmissionPolicy ${name}`, 'target', message);
}

export function guardrailCheck(
  name: string,
  found: { readonly policy: boolean; readonly binding: boolean },
): CheckResult {
  const base = guardrailBase(name);
  if (found.policy && found.binding)
    return pass(base.id, base.group, base.title, 'ValidatingAdmissionPolicy and its binding exist');
  const missing = [
    found.policy ? [] : ['ValidatingAdmissionPolicy'],
    found.binding ? [] : ['ValidatingAdmissionPolicyBinding'],
  ].flat();
  return problem(
    'fail',
    base,
    `no ${missing.join(' and no ')} ${name}: a leaked token could mint longer-lived or unbound successors`,
    'run kubeconfig-rotator bootstrap --credential token for this source again (it applies the guardrail)',
  );
}

export type IssuerTrial =
  | { readonly result: 'notAsked' }
  | { readonly result: 'noToken'; readonly message: string }
  | { readonly result: 'reviewed'; readonly username: string }
  | { readonly result: 'refused'; readonly message: string }
  | { readonly result: 'error'; readonly message: string };

/** Does the target accept a real token of the source's ServiceAccount (its jwt authenticator trusts the issuer)? */
export function issuerTrustCheck(
  account: string | undefined,
  audience: string,
  userPrefix: string,
  trial: IssuerTrial,
): CheckResult {
  const base = {
    id: 'federated.issuer-trust',
    group: 'federated target',
    title: "the target trusts the source's ServiceAccount tokens",
  } as const;
  const bootstrap =
    'run kubeconfig-rotator bootstrap --credential federated for this source (it writes the authenticator; docs/federation.md)';
  switch (trial.result) {
    case 'notAsked':
      return problem(
        'warn',
        base,
        'not checked: it needs --service-account and the source kubeconfig',
        'give --service-account NAMESPACE/NAME of the source ServiceAccount the sidecar runs as, and the source kubeconfig',
      );
    case 'noToken':
      return problem(
        'fail',
        base,
        `the source issued no token for ${account ?? '?'} (audience ${audience}): ${trial.message}`,
        'check that the ServiceAccount exists in the source and that the source kubeconfig may create its tokens',
      );
    case 'reviewed':
      return trial.username.startsWith(userPrefix)
        ? pass(
            base.id,
            base.group,
            base.title,
            `a token of ${account ?? '?'} for ${audience} authenticated as ${trial.username}`,
          )
        : problem(
            'fail',
            base,
            `a token of ${account ?? '?'} authenticated as ${trial.username}, not under the prefix ${userPrefix}: another authenticator maps it`,
            `give --user-prefix as bootstrap used it, or ${bootstrap}`,
          );
    case 'refused':
      return problem(
        'fail',
        base,
        `the target refused a token of ${account ?? '?'} for audience ${audience} (401): its authenticator does not trust the source's issuer, this audience or this ServiceAccount (${trial.message})`,
        bootstrap,
      );
    case 'error':
      return reviewFailedCheck(base, "the source's", trial.message, 'federated');
  }
}
