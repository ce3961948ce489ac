// The contract between a ClusterProfile's access providers and the exec credential plugins they name: what a
// cluster manager (the sidecar, issue 26) writes in `status.accessProviders[].cluster`, and what the plugin
// reads back from the ExecCredential's `spec.cluster.config`.
//
// sigs.k8s.io/cluster-inventory-api v0.1.0's access.Config.BuildConfigFromCP passes the extension named
// `client.authentication.k8s.io/exec` of the provider's cluster, as it is, to the exec plugin as
// ExecCredential spec.cluster.config (with provideClusterInfo: true), so this extension's value is all the
// plugin learns about where the credential is.
import { z } from 'zod';

/** The exec extension name client-go reserves for a plugin's per-cluster configuration. */
export const EXEC_EXTENSION = 'client.authentication.k8s.io/exec';

/** Our access provider: `kubeconfig-rotator credential` reads a sidecar's directory or Secret sink. */
export const PROVIDER_NAME = 'kubeconfig-rotator';

/** The upstream plugin (cluster-inventory-api plugins/kubeconfig-secretreader): a Secret holding a kubeconfig. */
export const SECRETREADER_PROVIDER_NAME = 'kubeconfig-secretreader';

const absolutePath = z.string().regex(/^\//, 'must be an absolute path');
const name = z.string().min(1).max(253);
const target = z.string().min(1).max(253).optional().describe('The target the credential is for, named in messages.');

/** A directory sink: the plugin reads the version `..data` points at. */
export const directoryExtensionSchema = z.strictObject({ directory: absolutePath, target });

/** A Secret sink in the source cluster: the plugin reads it with the pod's in-cluster credentials. */
export const secretExtensionSchema = z.strictObject({
  secret: z.strictObject({ namespace: name, name }),
  target,
});

/** The value of our provider's `client.authentication.k8s.io/exec` extension. */
export const execExtensionSchema = z.union([directoryExtensionSchema, secretExtensionSchema]);
export type ExecExtension = z.infer<typeof execExtensionSchema>;

/** The value of the upstream kubeconfig-secretreader provider's extension: a Secret key holding a kubeconfig. */
export const secretreaderExtensionSchema = z.object({
  name,
  key: z.string().min(1),
  namespace: name,
  context: z.string().optional(),
});
export type SecretreaderExtension = z.infer<typeof secretreaderExtensionSchema>;

/** Where the target is, as a ClusterProfile's access provider carries it (clientcmd v1 Cluster fields). */
export interface ProviderCluster {
  readonly server: string;
  readonly caPem: string;
  readonly tlsServerName?: string;
}

/** One `status.accessProviders[]` entry (cluster-inventory-api v1alpha1 AccessProvider), in its JSON form. */
export interface AccessProvider {
  readonly name: string;
  readonly cluster: {
    readonly server: string;
    readonly 'certificate-authority-data': string;
    readonly 'tls-server-name'?: string;
    readonly extensions: readonly [{ readonly name: typeof EXEC_EXTENSION; readonly extension: unknown }];
  };
}

/** The access provider entry for a plugin, carrying its extension value. */
export function accessProvider(
  provider: typeof PROVIDER_NAME | typeof SECRETREADER_PROVIDER_NAME,
  cluster: ProviderCluster,
  extension: ExecExtension | SecretreaderExtension,
): AccessProvider {
  return {
    name: provider,
    cluster: {
      server: cluster.server,
      'certificate-authority-data': Buffer.from(cluster.caPem, 'utf8').toString('base64'),
      ...(cluster.tlsServerName === undefined ? {} : { 'tls-server-name': cluster.tlsServerName }),
      extensions: [{ name: EXEC_EXTENSION, extension }],
    },
  };
}
