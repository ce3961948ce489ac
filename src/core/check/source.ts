// `check`'s decisions on what bootstrap left in the source: the bootstrap Secret, and the kubeconfig it holds
// verifying the target's certificate as the sidecar will connect.
import { unreadableCheck, type EndpointTrial } from './common.ts';
import { pass, problem, type CheckResult } from './model.ts';

const bootstrapSecretBase = (where: string) =>
  ({ id: 'source.bootstrap-secret', group: 'source', title: `bootstrap Secret ${where}` }) as const;

/** The bootstrap Secret check when the Secret could not be read (not a 404). */
export function bootstrapSecretUnreadableCheck(where: string, message: string): CheckResult {
  return unreadableCheck(bootstrapSecretBase(where), `Secret ${where}`, 'source', message);
}

export function bootstrapSecretCheck(
  where: string,
  seen: { readonly exists: boolean; readonly hasKubeconfig: boolean },
): CheckResult {
  const base = bootstrapSecretBase(where);
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
