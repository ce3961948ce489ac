// The Kubernetes releases the features we rely on need, checked against a cluster's /version at start, so a
// cluster too old for what the configuration asks is named with the feature, not met later as a confusing
// failure (a CSR the apiserver rejects, tokens a target never accepts, renewals all denied).

/** What an apiserver's /version says, as far as the rules need it. */
export interface KubeVersion {
  readonly minor: number;
  /** As the cluster reports it, for messages ("v1.31.4-eks-1234"). */
  readonly gitVersion: string;
}

export interface Requirement {
  /** The first 1.x release that has the feature. */
  readonly minor: number;
  readonly feature: string;
}

export const CSR_EXPIRATION_SECONDS: Requirement = {
  minor: 22,
  feature: 'CSR spec.expirationSeconds (the certificate lifetime the sidecar asks for)',
};
export const SELF_SUBJECT_REVIEW: Requirement = {
  minor: 28,
  feature: 'SelfSubjectReview authentication.k8s.io/v1 (how the sidecar checks that the target accepts a token)',
};
export const VALIDATING_ADMISSION_POLICY: Requirement = {
  minor: 30,
  feature: 'ValidatingAdmissionPolicy admissionregistration.k8s.io/v1 (the token guardrail)',
};
export const STRUCTURED_AUTHENTICATION: Requirement = {
  minor: 30,
  feature: 'structured authentication configuration (the jwt authenticator that accepts federated tokens)',
};
// kubernetes#125634: the x509 authenticator records the certificate's hash in the user's extra from 1.32.
export const CREDENTIAL_ID: Requirement = {
  minor: 32,
  feature: 'authentication.kubernetes.io/credential-id in user extra (what proves a renewal used a client certificate)',
};

/**
 * The version in a /version response; undefined when it is not one. Managed services append to the minor
 * ("30+"): its leading digits are the release.
 */
export function parseKubeVersion(body: unknown): KubeVersion | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { major, minor, gitVersion } = body as Record<string, unknown>;
  if (major !== '1' || typeof minor !== 'string') return undefined;
  const parsed = /^(\d+)/.exec(minor)?.[1];
  if (parsed === undefined) return undefined;
  return { minor: Number(parsed), gitVersion: typeof gitVersion === 'string' ? gitVersion : `v1.${parsed}` };
}

// The jwt authenticator of structured authentication configuration: beta (on by default) in 1.30, GA in 1.34.
export const FEDERATED_BOOTSTRAP: Requirement = {
  minor: STRUCTURED_AUTHENTICATION.minor,
  feature:
    "federated bootstrap (bootstrap.with: federated: the target's jwt authenticator of structured authentication configuration accepts the source's ServiceAccount tokens; on an older target use bootstrap.with: token)",
};

/** What a sidecar target of this credential kind (and, for certificates, this bootstrap) needs of its target. */
export function targetRequirements(
  credential: 'certificate' | 'token' | 'federated',
  bootstrapWith: 'token' | 'federated' = 'token',
): readonly Requirement[] {
  switch (credential) {
    case 'certificate':
      return bootstrapWith === 'federated' ? [CSR_EXPIRATION_SECONDS, FEDERATED_BOOTSTRAP] : [CSR_EXPIRATION_SECONDS];
    case 'token':
      return [SELF_SUBJECT_REVIEW];
    case 'federated':
      return [SELF_SUBJECT_REVIEW, STRUCTURED_AUTHENTICATION];
  }
}

/** Why `version` cannot serve `requirements`, one message per missing feature; empty when it can. */
export function versionProblems(version: KubeVersion, requirements: readonly Requirement[]): string[] {
  return requirements
    .filter((requirement) => version.minor < requirement.minor)
    .map(
      (requirement) =>
        `${requirement.feature} needs Kubernetes 1.${String(requirement.minor)} or later; the cluster runs ${version.gitVersion}`,
    );
}

/**
 * The approver's policies that need the renewal proof (`renewal: true`, the default) on a cluster that records
 * no credential-id: there every renewal would be denied. One message per policy, by field path.
 */
export function renewalProofProblems(
  policies: readonly { readonly name?: string | undefined; readonly renewal: boolean | string }[],
  version: KubeVersion,
): string[] {
  const [problem] = versionProblems(version, [CREDENTIAL_ID]);
  if (problem === undefined) return [];
  return policies.flatMap((policy, index) =>
    policy.renewal === true
      ? [
          `policies[${String(index)}]${policy.name === undefined ? '' : ` (${policy.name})`}.renewal: ${problem}: ` +
            'every renewal would be denied (renewal: trustUsername accepts the username alone, renewal: false none)',
        ]
      : [],
  );
}
