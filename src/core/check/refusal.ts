// The sidecar's wording for a refused bootstrap credential; a module of its own, so the sidecar's module graph
// holds none of the check's other decisions (policy evaluation, plans).
/**
 * What the sidecar says when the target refuses its bootstrap credential and it holds no valid credential:
 * never issued one (the bootstrap never worked: find out why with `check`) or one that expired (run bootstrap
 * again). The Event reason tells the two apart.
 */
export function bootstrapRefusal(
  kind: 'certificate' | 'token',
  everIssued: boolean,
): { readonly reason: 'BootstrapRefused' | 'RebootstrapNeeded'; readonly causes: string } {
  if (everIssued)
    return {
      reason: 'RebootstrapNeeded',
      causes: `the ${kind} expired and the bootstrap credential is no longer accepted (expired, revoked or replaced by a later bootstrap): run kubeconfig-rotator bootstrap for this source and target again`,
    };
  const likely =
    kind === 'certificate'
      ? `the target's apiserver may not accept bootstrap tokens (--enable-bootstrap-token-auth; where it cannot be set, use --credential token or federated), the bootstrap token expired or a later bootstrap replaced it, or the bootstrap Secret is missing`
      : `the bootstrap token expired or was revoked (revoke deletes its lease Secret), the bootstrap Secret is missing, or, for a federated target, the target does not trust the source's issuer`;
  return {
    reason: 'BootstrapRefused',
    causes: `no ${kind} was ever issued and the target refuses the bootstrap credential: ${likely}; run kubeconfig-rotator check --source-name ... --target-name ... to find which`,
  };
}
