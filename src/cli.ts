#!/usr/bin/env node
// The kubeconfig-rotator command line: one entry point, one subcommand per role. Exit status: 0 success,
// 1 failure at run time, 2 bad usage or configuration.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { APPROVER_OPTIONS, APPROVER_USAGE } from './approver/options.ts';
import type { ClusterPair } from './bootstrap/kube.ts';

export const EXIT_USAGE = 2;

type OptionsSpec = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: OptionsSpec;
  readonly allowPositionals: boolean;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

class UsageError extends Error {}

function requireOption(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

function optionalString(values: Record<string, unknown>, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** The flags naming a source and a target cluster, shared by the operator's commands that act on both. */
const CLUSTER_PAIR_OPTIONS = {
  'target-kubeconfig': { type: 'string' },
  'target-context': { type: 'string' },
  'source-kubeconfig': { type: 'string' },
  'source-context': { type: 'string' },
  'source-name': { type: 'string' },
  'target-name': { type: 'string' },
} as const satisfies OptionsSpec;

function clusterPairOf(values: Record<string, unknown>): ClusterPair {
  return {
    targetKubeconfig: optionalString(values, 'target-kubeconfig'),
    targetContext: optionalString(values, 'target-context'),
    sourceKubeconfig: optionalString(values, 'source-kubeconfig'),
    sourceContext: optionalString(values, 'source-context'),
    source: requireOption(values, 'source-name'),
    target: requireOption(values, 'target-name'),
  };
}

async function withShutdownSignal(run: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const { shutdownSignal } = await import('./io/lifecycle.ts');
  const shutdown = shutdownSignal();
  try {
    return await run(shutdown.abort);
  } finally {
    shutdown.dispose();
  }
}

const COMMANDS: Record<string, Command> = {
  sidecar: {
    summary: 'keep short-lived kubeconfigs for target clusters valid: certificates or tokens (runs beside the agent)',
    usage: 'sidecar --config FILE [--once]',
    options: { config: { type: 'string' }, once: { type: 'boolean' } },
    allowPositionals: false,
    run: async (values) => {
      const { runSidecar } = await import('./sidecar/run.ts');
      return withShutdownSignal((signal) =>
        runSidecar({
          configPath: requireOption(values, 'config'),
          once: values.once === true,
          signal,
          stderr: process.stderr,
          env: process.env,
        }),
      );
    },
  },
  approver: {
    summary: 'approve or deny CertificateSigningRequests by policy (runs in the target cluster)',
    usage: APPROVER_USAGE,
    options: APPROVER_OPTIONS,
    allowPositionals: false,
    run: async (values) => {
      const { runApprover } = await import('./approver/run.ts');
      return withShutdownSignal((signal) => runApprover({ values, signal, stderr: process.stderr, env: process.env }));
    },
  },
  bootstrap: {
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
      const { runBootstrap } = await import('./bootstrap/run.ts');
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
  },
  revoke: {
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
      const { runRevoke } = await import('./bootstrap/revoke.ts');
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
  },
  check: {
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
        const { runSidecarCheck } = await import('./check/sidecar.ts');
        return runSidecarCheck({
          ...inCluster,
          configPath: config,
          serviceAccount: optionalString(values, 'service-account'),
        });
      }
      if (approverPolicy !== undefined) {
        const { runApproverCheck } = await import('./check/approver.ts');
        return runApproverCheck({
          ...inCluster,
          policyPath: approverPolicy,
          namespace: requireOption(values, 'approver-namespace'),
          name: requireOption(values, 'approver-name'),
        });
      }
      const { runCheck } = await import('./check/run.ts');
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
  },
  status: {
    summary: 'show the identity, serial, expiry and next rotation of a published kubeconfig',
    usage: 'status PATH | status --secret NAMESPACE/NAME [--key KEY] [--kubeconfig FILE] [--context CTX] [--json]',
    options: {
      secret: { type: 'string' },
      key: { type: 'string' },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
      json: { type: 'boolean' },
    },
    allowPositionals: true,
    run: async (values, positionals) => {
      const secret = optionalString(values, 'secret');
      if ((secret === undefined) === (positionals.length === 0) || positionals.length > 1) {
        throw new UsageError('status takes one PATH or --secret NAMESPACE/NAME');
      }
      const { formatReport, StatusError, statusOfPath, statusOfSecret, usable } = await import('./sidecar/status.ts');
      const now = Date.now();
      try {
        const status =
          secret === undefined
            ? statusOfPath(positionals[0] ?? '', now)
            : await statusOfSecret(
                secret,
                {
                  kubeconfig: optionalString(values, 'kubeconfig'),
                  context: optionalString(values, 'context'),
                  key: optionalString(values, 'key'),
                },
                now,
              );
        process.stdout.write(values.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatReport(status, now));
        // Exit 1 when the credential would not work: expired, or a key that does not match.
        return usable(status) ? 0 : 1;
      } catch (error) {
        if (!(error instanceof StatusError)) throw error;
        process.stderr.write(`kubeconfig-rotator status: ${error.message}\n`);
        return 1;
      }
    },
  },
  credential: {
    summary:
      'exec credential plugin (client.authentication.k8s.io/v1): prints the credential a sidecar published, expiring at its next rotation',
    usage:
      'credential [--directory DIR | --secret-namespace NS --secret-name NAME [--kubeconfig FILE]] [--target NAME] ' +
      '(or from a ClusterProfile: spec.cluster.config in KUBERNETES_EXEC_INFO)',
    options: {
      directory: { type: 'string' },
      'secret-namespace': { type: 'string' },
      'secret-name': { type: 'string' },
      kubeconfig: { type: 'string' },
      target: { type: 'string' },
    },
    allowPositionals: false,
    run: async (values) => {
      const { runCredential } = await import('./credential/run.ts');
      const given = (name: string) => optionalString(values, name);
      return runCredential({
        directory: given('directory'),
        secretNamespace: given('secret-namespace'),
        secretName: given('secret-name'),
        kubeconfig: given('kubeconfig'),
        target: given('target'),
        env: process.env,
        stdout: process.stdout,
        stderr: process.stderr,
      });
    },
  },
  injector: {
    summary: 'mutating admission webhook that adds the sidecar to annotated Pods (runs in the source cluster)',
    usage: 'injector --config FILE [--kubeconfig FILE]',
    options: { config: { type: 'string' }, kubeconfig: { type: 'string' } },
    allowPositionals: false,
    run: async (values) => {
      const { runInjector } = await import('./injector/run.ts');
      const configPath = requireOption(values, 'config');
      const kubeconfig = optionalString(values, 'kubeconfig');
      return withShutdownSignal((signal) => runInjector({ configPath, kubeconfig, signal, stderr: process.stderr }));
    },
  },
};

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`);
  const forms = Object.values(COMMANDS).map((command) => `  kubeconfig-rotator ${command.usage}`);
  return [
    'usage: kubeconfig-rotator <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    ...forms,
    '',
    'options:',
    '  --help     show this help (also after a command)',
    '  --version  print the version',
    '',
  ].join('\n');
}

export async function main(
  argv: readonly string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') {
    out.write(usage());
    return 0;
  }
  if (first === '--version') {
    out.write(`${packageVersion()}\n`);
    return 0;
  }
  try {
    if (first === undefined) throw new UsageError('no command given');
    const command = COMMANDS[first];
    if (command === undefined) throw new UsageError(`unknown command "${first}"`);
    if (rest.includes('--help') || rest.includes('-h')) {
      out.write(`usage: kubeconfig-rotator ${command.usage}\n\n${command.summary}\n`);
      return 0;
    }
    const parsed = parseCommandLine(command, rest);
    return await command.run(parsed.values, parsed.positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`kubeconfig-rotator: ${error.message}\n\n${usage()}`);
      return EXIT_USAGE;
    }
    throw error;
  }
}

function parseCommandLine(
  command: Command,
  args: string[],
): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({ args, options: command.options, allowPositionals: command.allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), { cause: error });
  }
}

if (import.meta.main) {
  // Output piped into `head` and the like: a closed pipe ends the program quietly.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  main(process.argv.slice(2), process.stdout, process.stderr).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`kubeconfig-rotator: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
