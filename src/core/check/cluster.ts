// `check`'s decisions on each cluster as a whole: it answers with the kubeconfig given, runs a release with what
// the credential kind (target) or the injector (source) needs, and has the charts' alerts where they belong.
import {
  targetRequirements,
  VALIDATING_ADMISSION_POLICY,
  versionProblems,
  type KubeVersion,
  type Requirement,
} from '../kube-version.ts';
import type { ClusterRole, CredentialKind } from './common.ts';
import { pass, problem, type CheckResult } from './model.ts';

/** What the injector's native sidecars need of the source cluster (restartable init containers). */
export const NATIVE_SIDECARS: Requirement = {
  minor: 29,
  feature: 'native sidecars (init containers with restartPolicy: Always, how the injector adds the sidecar)',
};

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

export type AlertsSeen =
  | { readonly result: 'noCrd' }
  | { readonly result: 'crd'; readonly rules: readonly string[] }
  | { readonly result: 'unreadable'; readonly message: string };

/**
 * The charts' PrometheusRule belongs only where the Prometheus Operator's CRDs exist: without them there is
 * nothing to install (and helm install with prometheusRule.enabled fails at once); with them, a release without
 * its rule fires no alert when rotations fail.
 */
export function alertsCheck(role: 'target' | 'source', seen: AlertsSeen): CheckResult {
  const chart = role === 'target' ? 'the approver chart' : 'the sidecar chart';
  const base = {
    id: `${role}.alerts`,
    group: role,
    title: `alerts for ${chart} where the Prometheus Operator runs`,
  } as const;
  switch (seen.result) {
    case 'noCrd':
      return pass(
        base.id,
        base.group,
        base.title,
        `no PrometheusRule CRD (monitoring.coreos.com) in the ${role}: keep prometheusRule.enabled and serviceMonitor.enabled off there; the metrics are still served`,
      );
    case 'crd':
      return seen.rules.length > 0
        ? pass(base.id, base.group, base.title, `PrometheusRule ${seen.rules.join(', ')}`)
        : problem(
            'warn',
            base,
            `the Prometheus Operator's CRDs are installed in the ${role} but no kubeconfig-rotator PrometheusRule exists: no alert fires when rotations fail`,
            `helm upgrade ${chart === 'the approver chart' ? 'kubeconfig-rotator-approver' : 'kubeconfig-rotator-sidecar'} with prometheusRule.enabled=true and serviceMonitor.enabled=true`,
          );
    case 'unreadable':
      return problem(
        'fail',
        base,
        `could not read the PrometheusRule CRD or PrometheusRules: ${seen.message}`,
        `run the check with a ${role} kubeconfig that may read customresourcedefinitions and prometheusrules`,
      );
  }
}
