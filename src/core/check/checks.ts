// The decisions of `kubeconfig-rotator check`: from what the I/O shell observed, one result per check, with
// the cause and the fix chosen here so that they are unit-tested and the same wherever they are shown
// (the check command, bootstrap's self-verification). Pure: the shell passes observations and the time.
import { bootstrapGroup } from '../bootstrap/plan.ts';
import type { Evaluation } from '../policy/evaluate.ts';
import type { RequestFacts } from '../policy/request-checks.ts';
import { parseCertificationRequest } from '../pki/csr-parse.ts';
import { formatFinding } from '../policy/decision.ts';
import {
  targetRequirements,
  VALIDATING_ADMISSION_POLICY,
  versionProblems,
  type KubeVersion,
  type Requirement,
} from '../kube-version.ts';
import { pass, problem, type CheckGroup, type CheckId, type CheckResult } from './model.ts';

export type CredentialKind = 'certificate' | 'token' | 'federated';
export type ClusterRole = 'target' | 'source';

/** What the injector's native sidecars need of the source cluster (restartable init containers). */
export const NATIVE_SIDECARS: Requirement = {
  minor: 29,
  feature: 'native sidecars (init containers with restartPolicy: Always, how the injector adds the sidecar)',
};

/** The flags and alternatives a target that refuses bootstrap tokens leaves; shared with bootstrap's message. */
export const BOOTSTRAP_TOKEN_AUTH_FIX =
  "start the target's kube-apiserver with --enable-bootstrap-token-auth (and the tokencleaner controller in kube-controller-manager); " +
  'where that flag cannot be set (most managed offerings), use --credential token or --credential federated instead';

export type Reachability =
  | { readonly ok: true; readonly server: string; readonly version: KubeVersion | undefined }
  | { readonly ok: false; readonly server: string; readonly status: number | undefined; readonly message: string };

export function reachableCheck(role: ClusterRole, seen: Reachability): CheckResult {
  const base = { id: `${role}.reachable`, group: role, title: `the ${role} cluster answers` } as const;
  if (seen.ok)
    return pass(
      base.id,
      base.group,
      base.title,
      `${seen.server} runs ${seen.version?.gitVersion ?? 'an unreadable version'}`,
    );
  const credential = seen.status === 401 || seen.status === 403;
  return problem(
    'fail',
    base,
    `${seen.server}: ${seen.message}`,
    credential
      ? `the ${role} kubeconfig's credential is not accepted there: use a kubeconfig (--${role}-kubeconfig, --${role}-context) that works with kubectl`
      : `check the ${role} kubeconfig's server address, CA and network path (kubectl --kubeconfig ... version answers when it is right)`,
  );
}

/** One line per feature the credential kind (target) or the injector (source) needs of the release. */
export function versionChecks(
  role: ClusterRole,
  version: KubeVersion | undefined,
  credential: CredentialKind,
): CheckResult[] {
  const requirements =
    role === 'source'
      ? [NATIVE_SIDECARS]
      : [...targetRequirements(credential), ...(credential === 'token' ? [VALIDATING_ADMISSION_POLICY] : [])];
  return requirements.map((requirement) => {
    const name = requirement.feature.split(' (')[0] ?? requirement.feature;
    const base = {
      id: `${role}.version`,
      group: role,
      title: `Kubernetes 1.${String(requirement.minor)}+ for ${name}`,
    } as const;
    if (version === undefined)
      return problem(
        'warn',
        base,
        `the ${role} cluster's /version could not be read, so the release is not known`,
        `make sure the ${role} cluster runs Kubernetes 1.${String(requirement.minor)} or later`,
      );
    const [why] = versionProblems(version, [requirement]);
    return why === undefined
      ? pass(base.id, base.group, base.title, version.gitVersion)
      : role === 'source'
        ? // Only the injector and the charts' native-sidecar mode need it; a standalone sidecar runs anywhere.
          problem(
            'warn',
            base,
            `${why}: the injector and mode: sidecar cannot work there`,
            `run the sidecar standalone, or upgrade the source cluster to 1.${String(requirement.minor)} or later`,
          )
        : problem('fail', base, why, `upgrade the ${role} cluster to 1.${String(requirement.minor)} or later`);
  });
}

export type BootstrapTokenTrial =
  /** The check could not create its token Secret (RBAC, an admission policy). */
  | { readonly result: 'notCreated'; readonly message: string }
  /** A SelfSubjectReview made with the token answered with this user. */
  | { readonly result: 'reviewed'; readonly username: string; readonly groups: readonly string[] }
  /** The apiserver refused the token: 401. */
  | { readonly result: 'refused'; readonly message: string }
  | { readonly result: 'error'; readonly message: string };

/** The part of a check's id after its group's prefix ("bootstrap-token" of "certificate.bootstrap-token"). */
type IdIn<Prefix extends string> = CheckId extends infer Id
  ? Id extends `${Prefix}.${infer Rest}`
    ? Rest
    : never
  : never;

const certificate = (id: IdIn<'certificate'>, title: string) =>
  ({ id: `certificate.${id}`, group: 'certificate target' as CheckGroup, title }) as const;

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
      return problem(
        'fail',
        base,
        `the SelfSubjectReview with the check's token failed: ${trial.message}`,
        'retry; if it persists, check the target apiserver (SelfSubjectReview needs Kubernetes 1.28)',
      );
  }
}

export interface ApproverSeen {
  readonly namespace: string;
  readonly name: string;
  /** undefined: no such Deployment. */
  readonly deployment: { readonly replicas: number; readonly ready: number } | undefined;
  /** undefined: no such Lease. renewTime in ms since the epoch; undefined when the Lease has none. */
  readonly lease:
    { readonly holder: string; readonly renewTime: number | undefined; readonly durationSeconds: number } | undefined;
}

/** The fields of the approver's Deployment and Lease the check reads, as the API returns them (undefined: absent). */
export interface ApproverObjects {
  readonly deployment:
    | {
        readonly spec?: { readonly replicas?: number | undefined } | undefined;
        readonly status?: { readonly readyReplicas?: number | undefined } | undefined;
      }
    | undefined;
  readonly lease:
    | {
        readonly spec?:
          | {
              readonly holderIdentity?: string | undefined;
              readonly renewTime?: string | Date | undefined;
              readonly leaseDurationSeconds?: number | undefined;
            }
          | undefined;
      }
    | undefined;
}

/** What the check sees of the approver namespace/name in its Deployment and Lease (the API's defaults filled in). */
export function approverSeen(namespace: string, name: string, { deployment, lease }: ApproverObjects): ApproverSeen {
  const renewTime = lease?.spec?.renewTime;
  return {
    namespace,
    name,
    deployment:
      deployment === undefined
        ? undefined
        : { replicas: deployment.spec?.replicas ?? 1, ready: deployment.status?.readyReplicas ?? 0 },
    lease:
      lease === undefined
        ? undefined
        : {
            holder: lease.spec?.holderIdentity ?? '',
            renewTime: renewTime === undefined ? undefined : new Date(renewTime).getTime(),
            durationSeconds: lease.spec?.leaseDurationSeconds ?? 15,
          },
  };
}

/** The approver check when its Deployment or Lease could not be read (not a 404). */
export function approverUnreadableCheck(namespace: string, name: string, message: string): CheckResult {
  const base = certificate('approver', 'the approver is installed and ready');
  return unreadableCheck(base, `the Deployment and Lease ${namespace}/${name}`, 'target', message);
}

export function approverChecks(seen: ApproverSeen, now: number): CheckResult[] {
  const where = `${seen.namespace}/${seen.name}`;
  const install =
    `install the approver chart in the target (helm install kubeconfig-rotator-approver charts/kubeconfig-rotator-approver ` +
    `--namespace ${seen.namespace}), or give --approver-namespace and --approver-name of the release you installed`;
  const installed = certificate('approver', 'the approver is installed and ready');
  const results: CheckResult[] = [];
  if (seen.deployment === undefined)
    return [
      problem('fail', installed, `no Deployment ${where} in the target: nothing approves the sidecar's CSRs`, install),
    ];
  results.push(
    seen.deployment.ready > 0
      ? pass(
          installed.id,
          installed.group,
          installed.title,
          `Deployment ${where}: ${String(seen.deployment.ready)}/${String(seen.deployment.replicas)} ready`,
        )
      : problem(
          'fail',
          installed,
          `Deployment ${where} has no ready replica (0/${String(seen.deployment.replicas)})`,
          `kubectl -n ${seen.namespace} describe deployment ${seen.name} and read its pods' logs`,
        ),
  );
  const leading = certificate('leader', 'an approver replica holds the Lease');
  const { lease } = seen;
  if (lease === undefined || lease.holder === '' || lease.renewTime === undefined) {
    results.push(
      problem(
        'fail',
        leading,
        lease === undefined ? `no Lease ${where}: no replica has ever led` : `Lease ${where} is held by no one`,
        `kubectl -n ${seen.namespace} logs deployment/${seen.name}: a replica that cannot take the Lease says why (RBAC on leases, the apiserver)`,
      ),
    );
    return results;
  }
  const age = Math.max(0, now - lease.renewTime);
  const ageText = `${String(Math.round(age / 1000))} s ago`;
  results.push(
    age <= lease.durationSeconds * 1000
      ? pass(leading.id, leading.group, leading.title, `${lease.holder}, renewed ${ageText}`)
      : problem(
          'fail',
          leading,
          `${lease.holder} last renewed Lease ${where} ${ageText}, longer than its ${String(lease.durationSeconds)} s duration: no replica is leading, CSRs stay pending`,
          `kubectl -n ${seen.namespace} get pods and logs of deployment/${seen.name}: the leader lost the apiserver or was stopped`,
        ),
  );
  return results;
}

export type PolicySeen =
  | { readonly result: 'absent'; readonly where: string }
  | { readonly result: 'invalid'; readonly where: string; readonly problems: readonly string[] }
  /** Evaluated for a first certificate of the source's bootstrap requester; commonName given or not. */
  | {
      readonly result: 'evaluated';
      readonly where: string;
      readonly commonName: string;
      readonly evaluation: Evaluation;
    }
  /** No identity given: whether any live policy applies to the source's bootstrap group. */
  | { readonly result: 'applies'; readonly where: string; readonly applies: boolean };

export function policyCheck(source: string, seen: PolicySeen): CheckResult {
  const group = bootstrapGroup(source);
  const base = certificate('policy', `the approver's policy admits source ${source}`);
  const addPolicy = `add a policy to the approver chart's values (policies[].bootstrap.groups: [${group}], identity.commonNames: the sidecar's commonName) and helm upgrade`;
  switch (seen.result) {
    case 'absent':
      return problem('fail', base, `no policy file (key policy.yaml) in ${seen.where}`, addPolicy);
    case 'invalid':
      return problem(
        'fail',
        base,
        `the policy in ${seen.where} is invalid: ${seen.problems.slice(0, 3).join('; ')}`,
        'correct the approver chart values (the approver refuses this file too) and helm upgrade',
      );
    case 'applies':
      return seen.applies
        ? pass(
            base.id,
            base.group,
            base.title,
            `a policy in ${seen.where} names ${group} (give --common-name to evaluate the identity too)`,
          )
        : problem(
            'fail',
            base,
            `no policy in ${seen.where} names group ${group}: the sidecar's CSRs would stay pending`,
            addPolicy,
          );
    case 'evaluated':
      return evaluatedPolicy(base, group, seen, addPolicy);
  }
}

function evaluatedPolicy(
  base: ReturnType<typeof certificate>,
  group: string,
  seen: Extract<PolicySeen, { result: 'evaluated' }>,
  addPolicy: string,
): CheckResult {
  const { evaluation } = seen;
  const asked = `a first certificate for CN=${seen.commonName} requested by ${group}`;
  switch (evaluation.result) {
    case 'approved':
      return evaluation.dryRun
        ? problem(
            'warn',
            base,
            `only dry-run policy ${evaluation.policy} would approve ${asked}: nothing approves it`,
            `set dryRun: false on policy ${evaluation.policy} when its decisions look right`,
          )
        : pass(base.id, base.group, base.title, `policy ${evaluation.policy} approves ${asked}`);
    case 'review':
      return problem(
        'warn',
        base,
        `policy ${evaluation.policy} allows ${asked} if a SubjectAccessReview for the requester allows it, which the check does not make`,
        `grant the source's bootstrap group what policy ${evaluation.policy}'s subjectAccessReview asks (docs/approver.md)`,
      );
    case 'denied':
      return problem(
        'fail',
        base,
        `${seen.where} denies ${asked}: ${evaluation.findings.slice(0, 3).map(formatFinding).join('; ')}`,
        `allow CN=${seen.commonName} in the policy for ${group} (identity.commonNames) and helm upgrade, or set the sidecar's commonName to one it allows`,
      );
    case 'unprocessed':
      return problem(
        'fail',
        base,
        evaluation.reason === 'otherSigner'
          ? `${seen.where} serves another signer than kubernetes.io/kube-apiserver-client`
          : `no policy in ${seen.where} applies to ${group}: the sidecar's CSRs would stay pending`,
        addPolicy,
      );
  }
}

const token = (id: IdIn<'token'>, title: string) =>
  ({ id: `token.${id}`, group: 'token target' as CheckGroup, title }) as const;

/** The ServiceAccount exists and may request tokens for itself (a SubjectAccessReview as it). */
export function tokenRequestCheck(
  account: string,
  seen: { readonly exists: boolean; readonly allowed: boolean; readonly reason: string },
): CheckResult {
  const base = token('token-request', `ServiceAccount ${account} may request its own tokens`);
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

export function guardrailCheck(
  name: string,
  found: { readonly policy: boolean; readonly binding: boolean },
): CheckResult {
  const base = token('guardrail', `the token guardrail ${name} is in place`);
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

export function bootstrapSecretCheck(
  where: string,
  seen: { readonly exists: boolean; readonly hasKubeconfig: boolean },
): CheckResult {
  const base = { id: 'source.bootstrap-secret', group: 'source', title: `bootstrap Secret ${where}` } as const;
  if (seen.exists && seen.hasKubeconfig)
    return pass(base.id, base.group, base.title, 'present, with its kubeconfig key');
  return problem(
    'fail',
    base,
    seen.exists
      ? 'present, but without the kubeconfig key'
      : 'absent: the sidecar has no credential for its first request',
    'run kubeconfig-rotator bootstrap for this source and target (with --namespace and --secret-name if you changed them)',
  );
}

/** What a sidecar of `source` asks on its first certificate, for the approver's own evaluate(). */
export function firstCertificateFacts(input: {
  readonly source: string;
  readonly tokenUser: string;
  readonly csrPem: string;
  readonly usages: readonly string[];
  readonly expirationSeconds: number;
}): RequestFacts {
  return {
    signerName: 'kubernetes.io/kube-apiserver-client',
    usages: input.usages,
    expirationSeconds: input.expirationSeconds,
    requester: {
      username: input.tokenUser,
      groups: [bootstrapGroup(input.source), 'system:bootstrappers', 'system:authenticated'],
    },
    request: parseCertificationRequest(input.csrPem),
  };
}

/** A check whose object could not be read (not a 404): it fails, saying so, rather than guessing. */
export function unreadableCheck(
  base: { readonly id: CheckId; readonly group: CheckGroup; readonly title: string },
  what: string,
  role: ClusterRole,
  message: string,
): CheckResult {
  return problem(
    'fail',
    base,
    `could not read ${what}: ${message}`,
    `run the check with a ${role} kubeconfig whose user may read ${what} (bootstrap's admin kubeconfig does)`,
  );
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

// Node's codes for a serving certificate the client does not trust or that is not for the name it asked.
const TLS_VERIFY_CODE = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/;

/** Whether a connection error's code says the server's certificate failed verification. */
export const isTlsVerificationCode = (code: string): boolean => TLS_VERIFY_CODE.test(code);

export type EndpointTrial =
  | { readonly result: 'invalid'; readonly message: string }
  /** An HTTP answer of any status: the TLS handshake verified the server with the kubeconfig's CA and name. */
  | { readonly result: 'answered' }
  | { readonly result: 'tls'; readonly message: string }
  | { readonly result: 'unreachable'; readonly message: string };

/** The bootstrap kubeconfig the source holds (server, CA, tls-server-name) verifies the target's certificate. */
export function publishedEndpointCheck(
  where: string,
  endpoint: { readonly server: string; readonly tlsServerName: string | undefined },
  trial: EndpointTrial,
): CheckResult {
  const base = {
    id: 'source.published-endpoint',
    group: 'source',
    title: `the kubeconfig in ${where} verifies the target's certificate`,
  } as const;
  const name = endpoint.tlsServerName === undefined ? '' : ` for name ${endpoint.tlsServerName}`;
  const rerun =
    "run bootstrap again with a target kubeconfig whose server, CA and tls-server-name work with kubectl (or --server for an address the target's certificate is valid for)";
  switch (trial.result) {
    case 'answered':
      return pass(base.id, base.group, base.title, `${endpoint.server} answered over TLS checked with its CA${name}`);
    case 'invalid':
      return problem('fail', base, `its kubeconfig cannot be read: ${trial.message}`, rerun);
    case 'tls':
      return problem(
        'fail',
        base,
        `${endpoint.server}'s certificate does not verify with the kubeconfig's CA${name}: ${trial.message}; the sidecar's every request would fail the same way`,
        rerun,
      );
    case 'unreachable':
      // The sidecar connects from the source cluster: a private address may be out of this machine's reach.
      return problem(
        'warn',
        base,
        `${endpoint.server} could not be reached from here (${trial.message}), so its certificate was not checked`,
        'run the check where the source cluster reaches the target (the sidecar connects from there), or check the server address bootstrap wrote (--server)',
      );
  }
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
      return problem(
        'fail',
        base,
        `the SelfSubjectReview with the source's token failed: ${trial.message}`,
        'retry; if it persists, check the target apiserver',
      );
  }
}
