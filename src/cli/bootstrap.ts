// The operator's commands that set up and take down a source's access to a target: `bootstrap` and `revoke`.
import { CLUSTER_PAIR_OPTIONS, clusterPairOf, optionalString, requireOption, type Command } from './command.ts';

export const bootstrapCommand: Command = {
  summary:
    "set up one source for a target: a bootstrap token (certificates), a ServiceAccount and first token (tokens) or the target's trust of the source's issuer (federated)",
  usage:
    'bootstrap --source-name NAME --target-name NAME [--target-kubeconfig FILE] [--target-context CTX] [--source-kubeconfig FILE] ' +
    '[--source-context CTX] [--ttl 1h] [--namespace kubeconfig-rotator] [--secret-name NAME] [--server URL] [--dry-run] ' +
    '[--credential certificate|token|federated] [--bootstrap-with token|federated] [--target-namespace kubeconfig-rotator] [--max-token-ttl 24h] [--audience AUD]... ' +
    '[--service-account NS/NAME]... [--user-prefix source-NAME:] [--target-type self-managed|eks] [--authentication-config FILE] ' +
    '[--allow-anonymous-discovery] [--cluster-role ROLE]...',
  options: {
    ...CLUSTER_PAIR_OPTIONS,
    ttl: { type: 'string', default: '1h' },
    namespace: { type: 'string', default: 'kubeconfig-rotator' },
    credential: { type: 'string', default: 'certificate' },
    'bootstrap-with': { type: 'string' },
    'target-namespace': { type: 'string', default: 'kubeconfig-rotator' },
    'max-token-ttl': { type: 'string' },
    audience: { type: 'string', multiple: true },
    'service-account': { type: 'string', multiple: true },
    'user-prefix': { type: 'string' },
    'target-type': { type: 'string' },
    'authentication-config': { type: 'string' },
    'allow-anonymous-discovery': { type: 'boolean' },
    'cluster-role': { type: 'string', multiple: true },
    'secret-name': { type: 'string' },
    server: { type: 'string' },
    'dry-run': { type: 'boolean' },
  },
  allowPositionals: false,
  run: async (values) => {
    const { runBootstrap } = await import('../bootstrap/run.ts');
    const given = (name: string) => optionalString(values, name);
    return runBootstrap({
      ...clusterPairOf(values),
      secretName: given('secret-name'),
      server: given('server'),
      ttl: requireOption(values, 'ttl'),
      namespace: requireOption(values, 'namespace'),
      credential: requireOption(values, 'credential'),
      bootstrapWith: given('bootstrap-with'),
      targetNamespace: requireOption(values, 'target-namespace'),
      maxTokenTtl: given('max-token-ttl'),
      audiences: values.audience as string[] | undefined,
      federated: {
        serviceAccounts: (values['service-account'] as string[] | undefined) ?? [],
        userPrefix: given('user-prefix'),
        targetType: given('target-type'),
        authenticationConfig: given('authentication-config'),
        allowAnonymousDiscovery: values['allow-anonymous-discovery'] === true,
        clusterRoles: (values['cluster-role'] as string[] | undefined) ?? [],
      },
      dryRun: values['dry-run'] === true,
      out: process.stdout,
      err: process.stderr,
    });
  },
};

export const revokeCommand: Command = {
  summary: 'token targets: invalidate every token of one source at once (deletes its lease Secret in the target)',
  usage:
    'revoke --source-name NAME [--target-kubeconfig FILE] [--target-context CTX] [--target-namespace kubeconfig-rotator] [--dry-run]',
  options: {
    'source-name': { type: 'string' },
    'target-kubeconfig': { type: 'string' },
    'target-context': { type: 'string' },
    'target-namespace': { type: 'string' },
    'dry-run': { type: 'boolean' },
  },
  allowPositionals: false,
  run: async (values) => {
    const { runRevoke } = await import('../bootstrap/revoke.ts');
    const given = (name: string) => optionalString(values, name);
    return runRevoke({
      source: requireOption(values, 'source-name'),
      targetKubeconfig: given('target-kubeconfig'),
      targetContext: given('target-context'),
      targetNamespace: given('target-namespace'),
      dryRun: values['dry-run'] === true,
      out: process.stdout,
      err: process.stderr,
    });
  },
};
