// The sidecar's wording for a refused bootstrap credential; a module of its own, so the sidecar's module graph
// holds none of the check's other decisions (policy evaluation, plans).
export interface BootstrapRefusal {
  /** The Event reason: the bootstrap never worked (BootstrapRefused) or it no longer works (RebootstrapNeeded). */
  readonly reason: 'BootstrapRefused' | 'RebootstrapNeeded';
  /** What is wrong and its likely causes. */
  readonly causes: string;
  /** What a person does about it: the commands, in the order to try them. */
  readonly fix: string;
}

/**
 * What the sidecar says when the target refuses its bootstrap credential and it holds no valid credential:
 * never issued one (the bootstrap never worked: find out why with `check`) or one that expired (run bootstrap
 * again). Every place a person looks (the log, the pod's Event, the readiness reason) gives the causes and the
 * fix; the alert's runbook and docs/bootstrap.md say the same.
 */
export function bootstrapRefusal(
  kind: 'certificate' | 'token',
  everIssued: boolean,
  bootstrapWith: 'token' | 'federated' = 'token',
): BootstrapRefusal {
  if (bootstrapWith === 'federated') return federatedRefusal(everIssued);
  // Certificate targets may bootstrap with the pod's own ServiceAccount token instead (nothing to expire);
  // token targets may use federated tokens outright. Both need a target that trusts the source's issuer.
  const lasting =
    kind === 'certificate'
      ? `or, where the target trusts the source's ServiceAccount issuer, bootstrap --bootstrap-with federated (no bootstrap token to expire: new pods and a sidecar back from an outage get certificates by themselves)`
      : `or, where the target trusts the source's ServiceAccount issuer, bootstrap --credential federated (no bootstrap token to expire)`;
  const fix =
    `run kubeconfig-rotator bootstrap for this source and target again (a fresh bootstrap credential, picked up within seconds), ${lasting}; ` +
    `to tell the causes apart, run kubeconfig-rotator check --config <the sidecar's config> in this pod, or check --source-name ... --target-name ... from your machine`;
  if (everIssued)
    return {
      reason: 'RebootstrapNeeded',
      causes: `the ${kind} expired and the bootstrap credential is no longer accepted (expired, revoked or replaced by a later bootstrap)`,
      fix,
    };
  const likely =
    kind === 'certificate'
      ? `the target's apiserver may not accept bootstrap tokens (--enable-bootstrap-token-auth; where it cannot be set, use --credential token or federated), the bootstrap token expired or a later bootstrap replaced it, or the bootstrap Secret is missing`
      : `the bootstrap token expired or was revoked (revoke deletes its lease Secret), the bootstrap Secret is missing, or, for a federated target, the target does not trust the source's issuer`;
  return {
    reason: 'BootstrapRefused',
    causes: `no ${kind} was ever issued and the target refuses the bootstrap credential: ${likely}`,
    fix,
  };
}

/** A certificate target bootstrapping with the pod's own ServiceAccount token: nothing expires, trust is at fault. */
function federatedRefusal(everIssued: boolean): BootstrapRefusal {
  const likely =
    "the target does not trust the source's ServiceAccount issuer for this audience (yet: kube-apiserver reloads its AuthenticationConfiguration within about a minute of a change), the ServiceAccount or audience is not the one bootstrap set up, or the mapped user may not create CSRs";
  return {
    reason: everIssued ? 'RebootstrapNeeded' : 'BootstrapRefused',
    causes: `${everIssued ? 'the certificate expired and' : 'no certificate was ever issued and'} the target refuses the pod's ServiceAccount token (federated bootstrap): ${likely}`,
    fix: "run kubeconfig-rotator bootstrap --credential certificate --bootstrap-with federated for this source and target again (it restores the trust and the CSR requester binding); to tell the causes apart, run kubeconfig-rotator check --config <the sidecar's config> in this pod, or check --credential federated --service-account NAMESPACE/NAME from your machine",
  };
}
