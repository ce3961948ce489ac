// A target's sinks in the sidecar's configuration: the shared directory, and the Secret in the layout its
// consumer reads, with the checks that span a Secret sink's fields.
import { z } from 'zod';
import { KEYED_FORMATS, REFERENCE_FORMATS, reservedMetadata, SECRET_FORMATS } from '../secret-format/formats.ts';
import { absolutePath, dnsLabel, dnsSubdomain } from './fields.ts';

export const directorySinkSchema = z
  .strictObject({
    path: absolutePath.describe(
      'Directory (a shared volume) to publish into, with the projected-volume ..data layout.',
    ),
    embed: z
      .boolean()
      .default(false)
      .describe(
        'Write a self-contained kubeconfig (data embedded) instead of one that references tls.crt/tls.key/ca.crt by path.',
      ),
  })
  .describe('Publish into a directory shared with the agent.');

const secretKey = z
  .string()
  .regex(/^[-._a-zA-Z0-9]+$/, 'must be a valid Secret key')
  .max(253);
// Label and annotation keys: an optional DNS-subdomain prefix and a name (Kubernetes' qualified names).
const qualifiedName = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
    'must be a qualified name (optional prefix/, then up to 63 of A-Z a-z 0-9 - _ .)',
  );
const labelValue = z
  .string()
  .regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/, 'must be a label value (up to 63 of A-Z a-z 0-9 - _ .)');

/** A Secret sink's fields without the checks that span them (the chart's values make namespace optional). */
export const secretSinkFields = z.strictObject({
  namespace: dnsLabel.describe('Namespace of the Secret in the source cluster.'),
  name: dnsSubdomain.describe('Name of the Secret (Cluster API reads `<clusterName>-kubeconfig`).'),
  format: z
    .enum(SECRET_FORMATS)
    .default('kubeconfig')
    .describe(
      'What the Secret holds, for which consumer: kubeconfig (a kubeconfig under `key`, plus tls.crt/tls.key/ca.crt), argocd (an Argo CD cluster Secret), istio (an Istio remote secret), cluster-api (`<cluster>-kubeconfig`), flux (key value, reconciled on change), linkerd (a Linkerd Link credentials Secret). See docs/consumers.md.',
    ),
  key: secretKey
    .refine((key) => !['tls.crt', 'tls.key', 'ca.crt'].includes(key), {
      error: 'must not be tls.crt, tls.key or ca.crt (the Secret holds those too)',
    })
    .optional()
    .describe(
      'Key holding the kubeconfig (formats kubeconfig, flux, linkerd); default: config (what Admiralty reads), value for flux, kubeconfig for linkerd.',
    ),
  tlsKeys: z
    .boolean()
    .optional()
    .describe('Also write tls.crt, tls.key and ca.crt (format kubeconfig only; default true there).'),
  clusterName: secretKey
    .optional()
    .describe("Argo CD's cluster name, Istio's cluster ID, Cluster API's cluster name; default: the target's name."),
  reference: z
    .strictObject({
      directory: absolutePath
        .optional()
        .describe(
          "The directory sink's path as the consumer's container mounts it; default: the directory sink's path.",
        ),
    })
    .optional()
    .describe(
      'Reference mode (formats kubeconfig, linkerd; needs a directory sink): the kubeconfig names tls.crt and tls.key by path in that directory, so the Secret changes only with the server or CA and a consumer that restarts on change never does.',
    ),
  labels: z.record(qualifiedName, labelValue).default({}).describe('Labels added to the Secret (kept).'),
  annotations: z.record(qualifiedName, z.string()).default({}).describe('Annotations added to the Secret (kept).'),
});

/** The checks that span a Secret sink's fields: each names the field that does not fit the format. */
export function checkSecretSink(
  sink: Omit<z.output<typeof secretSinkFields>, 'namespace'>,
  context: z.RefinementCtx,
): void {
  const problem = (path: string, message: string) => {
    context.addIssue({ code: 'custom', path: [path], message });
  };
  if (sink.key !== undefined && !KEYED_FORMATS.includes(sink.format))
    problem('key', `is fixed by format ${sink.format}; set it only with ${KEYED_FORMATS.join(', ')}`);
  if (sink.tlsKeys === true && sink.format !== 'kubeconfig')
    problem('tlsKeys', `format ${sink.format} reads no tls.* keys; set it only with format kubeconfig`);
  if (sink.tlsKeys === true && sink.reference !== undefined)
    problem('tlsKeys', 'would change the Secret at every rotation, which reference mode exists to avoid');
  if (sink.reference !== undefined && !REFERENCE_FORMATS.includes(sink.format))
    problem(
      'reference',
      `format ${sink.format}'s consumer accepts no file paths; use it with ${REFERENCE_FORMATS.join(', ')}`,
    );
  if (sink.clusterName !== undefined && !['argocd', 'istio', 'cluster-api'].includes(sink.format))
    problem('clusterName', `format ${sink.format} names no cluster; set it only with argocd, istio, cluster-api`);
  const reserved = reservedMetadata({ format: sink.format, targetName: 'target' });
  for (const key of Object.keys(sink.labels))
    if (key in reserved.labels) problem('labels', `${key} is set by format ${sink.format}`);
  for (const key of Object.keys(sink.annotations))
    if (key in reserved.annotations || key.startsWith('kubeconfig-rotator.io/'))
      problem('annotations', `${key} is set by kubeconfig-rotator`);
}

export const secretSinkSchema = secretSinkFields
  .superRefine(checkSecretSink)
  .describe('Publish a Secret in the source cluster, in the layout its consumer reads (`format`).');
