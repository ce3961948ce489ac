// The `check` command: a target and a source from an operator's machine (`--pre` before bootstrap), a sidecar's
// targets from its pod (`--config`), or the approver's policy from its cluster (`--approver-policy`).
import {
  CLUSTER_PAIR_OPTIONS,
  clusterPairOf,
  optionalString,
  requireOption,
  UsageError,
  type Command,
} from './command.ts';

export const checkCommand: Command = {
  summary:
    'check that a target and a source offer what bootstrap needs (--pre) or that an install works: each check pass/warn/fail with its fix',
  usage:
    'check --source-name NAME --target-name NAME [--target-kubeconfig FILE] [--target-context CTX] [--source-kubeconfig FILE] ' +
    '[--source-context CTX] [--credential certificate|token|federated] [--pre] [--namespace kubeconfig-rotator] [--secret-name NAME] ' +
    '[--target-namespace kubeconfig-rotator] [--approver-namespace kubeconfig-rotator] [--approver-name kubeconfig-rotator-approver] ' +
    '[--common-name CN] [--organization O]... [--output text|json] [--strict] [--skip-signer] ' +
    '[--service-account NS/NAME] [--audience AUD] [--user-prefix PREFIX] | ' +
    'check --config FILE [--service-account NS/NAME] (in a sidecar pod) | ' +
    'check --approver-policy FILE [--approver-namespace NS] [--approver-name NAME] (in the approver cluster)',
  options: {
    ...CLUSTER_PAIR_OPTIONS,
    config: { type: 'string' },
    'approver-policy': { type: 'string' },
    credential: { type: 'string', default: 'certificate' },
    pre: { type: 'boolean' },
    namespace: { type: 'string', default: 'kubeconfig-rotator' },
    'secret-name': { type: 'string' },
    'target-namespace': { type: 'string', default: 'kubeconfig-rotator' },
    'approver-namespace': { type: 'string', default: 'kubeconfig-rotator' },
    'approver-name': { type: 'string', default: 'kubeconfig-rotator-approver' },
    'common-name': { type: 'string' },
    organization: { type: 'string', multiple: true },
    output: { type: 'string', default: 'text' },
    strict: { type: 'boolean' },
    'skip-signer': { type: 'boolean' },
    'service-account': { type: 'string' },
    audience: { type: 'string' },
    'user-prefix': { type: 'string' },
  },
  allowPositionals: false,
  run: async (values) => {
    const config = optionalString(values, 'config');
    const approverPolicy = optionalString(values, 'approver-policy');
    const inCluster = {
      output: requireOption(values, 'output'),
      strict: values.strict === true,
      env: process.env,
      now: () => Date.now(),
      out: process.stdout,
      err: process.stderr,
    };
    if (config !== undefined && approverPolicy !== undefined)
      throw new UsageError('check takes --config (a sidecar) or --approver-policy (the approver), not both');
    if (config !== undefined) {
      const { runSidecarCheck } = await import('../check/sidecar.ts');
      return runSidecarCheck({
        ...inCluster,
        configPath: config,
        serviceAccount: optionalString(values, 'service-account'),
      });
    }
    if (approverPolicy !== undefined) {
      const { runApproverCheck } = await import('../check/approver.ts');
      return runApproverCheck({
        ...inCluster,
        policyPath: approverPolicy,
        namespace: requireOption(values, 'approver-namespace'),
        name: requireOption(values, 'approver-name'),
      });
    }
    const { runCheck } = await import('../check/run.ts');
    const given = (name: string) => optionalString(values, name);
    return runCheck({
      ...clusterPairOf(values),
      credential: requireOption(values, 'credential'),
      pre: values.pre === true,
      namespace: requireOption(values, 'namespace'),
      secretName: given('secret-name'),
      targetNamespace: requireOption(values, 'target-namespace'),
      approverNamespace: requireOption(values, 'approver-namespace'),
      approverName: requireOption(values, 'approver-name'),
      commonName: given('common-name'),
      organizations: (values.organization as string[] | undefined) ?? [],
      output: requireOption(values, 'output'),
      strict: values.strict === true,
      skipSigner: values['skip-signer'] === true,
      serviceAccount: given('service-account'),
      audience: given('audience'),
      userPrefix: given('user-prefix'),
      now: () => Date.now(),
      out: process.stdout,
      err: process.stderr,
    });
  },
};
