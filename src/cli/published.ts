// The commands that read what a sidecar published: `status` (a person's view of a kubeconfig) and `credential`
// (the exec credential plugin a consumer's kubeconfig runs).
import { optionalString, UsageError, type Command } from './command.ts';

export const statusCommand: Command = {
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
    const { formatReport, StatusError, statusOfPath, statusOfSecret, usable } = await import('../sidecar/status.ts');
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
};

export const credentialCommand: Command = {
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
    const { runCredential } = await import('../credential/run.ts');
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
};
