// The programs that run in a cluster: `sidecar` (beside the agent), `approver` (in the target) and `injector` (in
// the source), each given the shutdown signal (io/lifecycle.ts).
import { APPROVER_OPTIONS, APPROVER_USAGE } from '../approver/options.ts';
import { optionalString, requireOption, withShutdownSignal, type Command } from './command.ts';

export const sidecarCommand: Command = {
  summary: 'keep short-lived kubeconfigs for target clusters valid: certificates or tokens (runs beside the agent)',
  usage: 'sidecar --config FILE [--once]',
  options: { config: { type: 'string' }, once: { type: 'boolean' } },
  allowPositionals: false,
  run: async (values) => {
    const { runSidecar } = await import('../sidecar/run.ts');
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
};

export const approverCommand: Command = {
  summary: 'approve or deny CertificateSigningRequests by policy (runs in the target cluster)',
  usage: APPROVER_USAGE,
  options: APPROVER_OPTIONS,
  allowPositionals: false,
  run: async (values) => {
    const { runApprover } = await import('../approver/run.ts');
    return withShutdownSignal((signal) => runApprover({ values, signal, stderr: process.stderr, env: process.env }));
  },
};

export const injectorCommand: Command = {
  summary: 'mutating admission webhook that adds the sidecar to annotated Pods (runs in the source cluster)',
  usage: 'injector --config FILE [--kubeconfig FILE]',
  options: { config: { type: 'string' }, kubeconfig: { type: 'string' } },
  allowPositionals: false,
  run: async (values) => {
    const { runInjector } = await import('../injector/run.ts');
    const configPath = requireOption(values, 'config');
    const kubeconfig = optionalString(values, 'kubeconfig');
    return withShutdownSignal((signal) => runInjector({ configPath, kubeconfig, signal, stderr: process.stderr }));
  },
};
