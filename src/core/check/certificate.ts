// `check`'s decisions on what a certificate target offers the sidecar's first request and its renewals: it
// accepts bootstrap tokens of the source's group, and its kube-apiserver-client signer issues; the check's own
// token, if left behind. The approver and its policy are in approver.ts.
import { bootstrapGroup } from '../bootstrap/plan.ts';
import { certificate, reviewFailedCheck } from './common.ts';
import { pass, problem, type CheckResult } from './model.ts';

/** The flags and alternatives a target that refuses bootstrap tokens leaves; shared with bootstrap's message. */
export const BOOTSTRAP_TOKEN_AUTH_FIX =
  "start the target's kube-apiserver with --enable-bootstrap-token-auth (and the tokencleaner controller in kube-controller-manager); " +
  'where that flag cannot be set (most managed offerings), use --credential token or --credential federated instead';

export type BootstrapTokenTrial =
  /** The check could not create its token Secret (RBAC, an admission policy). */
  | { readonly result: 'notCreated'; readonly message: string }
  /** A SelfSubjectReview made with the token answered with this user. */
  | { readonly result: 'reviewed'; readonly username: string; readonly groups: readonly string[] }
  /** The apiserver refused the token: 401. */
  | { readonly result: 'refused'; readonly message: string }
  | { readonly result: 'error'; readonly message: string };

/** Does the target accept bootstrap tokens as members of this source's group? */
export function bootstrapTokenCheck(source: string, trial: BootstrapTokenTrial): CheckResult {
  const base = certificate('bootstrap-token', 'bootstrap tokens are accepted');
  const group = bootstrapGroup(source);
  switch (trial.result) {
    case 'reviewed':
      return trial.groups.includes(group)
        ? pass(base.id, base.group, base.title, `a token of the check authenticated as ${trial.username} in ${group}`)
        : problem(
            'fail',
            base,
            `a token of the check authenticated as ${trial.username}, but not in group ${group} (groups: ${trial.groups.join(', ')})`,
            'an authenticator in front of the bootstrap token one answers for these tokens: check the apiserver authentication configuration',
          );
    case 'refused':
      return problem(
        'fail',
        base,
        `the target refused a valid bootstrap token (401 Unauthorized): its apiserver does not accept bootstrap tokens (${trial.message})`,
        BOOTSTRAP_TOKEN_AUTH_FIX,
      );
    case 'notCreated':
      return problem(
        'fail',
        base,
        `the check could not create its bootstrap token Secret in kube-system: ${trial.message}`,
        'run the check with the target kubeconfig bootstrap uses (it must create Secrets in kube-system)',
      );
    case 'error':
      return reviewFailedCheck(base, "the check's", trial.message, 'certificate');
  }
}

/** The check's own token Secret, if its delete failed: it expires by itself, and is named to delete. */
export function leftBehindCheck(name: string): CheckResult {
  return problem(
    'warn',
    certificate('cleanup', "the check's token is removed"),
    `the check could not delete its token Secret ${name}; it expires within 10 minutes`,
    `kubectl --namespace ${name.split('/')[0] ?? 'kube-system'} delete secret ${name.split('/')[1] ?? name}`,
  );
}

export type SignerTrial =
  | { readonly result: 'skipped' }
  | { readonly result: 'issued'; readonly ms: number }
  | { readonly result: 'timeout'; readonly boundMs: number }
  /** A Denied or Failed condition (another approver denied it; the signer failed it). */
  | { readonly result: 'refused'; readonly condition: string; readonly message: string }
  | { readonly result: 'error'; readonly message: string };

/** Does kube-apiserver-client signing issue, within the bound, a CSR the check approves itself? */
export function signerCheck(trial: SignerTrial): CheckResult {
  const base = certificate('signer', 'the kubernetes.io/kube-apiserver-client signer issues certificates');
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  switch (trial.result) {
    case 'skipped':
      return problem(
        'warn',
        base,
        'not checked (--skip-signer)',
        'run the check without --skip-signer where creating and approving one short-lived CSR is allowed',
      );
    case 'issued':
      return pass(base.id, base.group, base.title, `a CSR the check approved was signed in ${seconds(trial.ms)}`);
    case 'timeout':
      return problem(
        'fail',
        base,
        `a CSR the check approved was not signed within ${seconds(trial.boundMs)}: nothing signs kube-apiserver-client certificates here (kube-controller-manager without the csrsigning controller or its --cluster-signing-* files; EKS: "client certificate signing is not supported")`,
        "enable kube-controller-manager's csrsigning controller with --cluster-signing-cert-file and --cluster-signing-key-file; where the target cannot sign client certificates, use --credential token or --credential federated",
      );
    case 'refused':
      return problem(
        'fail',
        base,
        `the check's CSR got condition ${trial.condition}: ${trial.message}`,
        trial.condition === 'Denied'
          ? 'another approver denies CSRs it has no policy for (an auto-approver, or a second kubeconfig-rotator approver with denyUnmatched): only one approver may serve this signer'
          : "read kube-controller-manager's log for the signer's error (its CA files)",
      );
    case 'error':
      return problem(
        'fail',
        base,
        `the check's CSR could not be created, approved or read: ${trial.message}`,
        "run the check with a target kubeconfig that may create and approve CSRs for kubernetes.io/kube-apiserver-client (bootstrap's admin kubeconfig)",
      );
  }
}
