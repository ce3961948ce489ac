// The sidecar's configuration file: its schema (also the source of the Helm chart's values.schema.json),
// defaults, and the checks that span fields.
import { z } from 'zod';
import { KEY_ALGORITHMS } from '../pki/keys.ts';
import { dnsLabel, dnsSubdomain, logLevel } from './fields.ts';
import { WORKLOAD_KINDS, workloadKey } from '../restart/workload.ts';
import type { CredentialKind } from '../credential/credential.ts';
import { KEYED_FORMATS, REFERENCE_FORMATS, reservedMetadata, SECRET_FORMATS } from '../secret-format/formats.ts';

/**
 * The sidecar's probe and metrics port, everywhere it runs (standalone, native sidecar, injected): in an agent's
 * pod it shares the network namespace, so not 8080 or another port agents commonly take.
 */
export const SIDECAR_PORT = 9571;

/** How a target is served: by its CSR API, its TokenRequest API, or the source's tokens it trusts. */
export const TARGET_CREDENTIALS = ['certificate', 'token', 'federated'] as const;

/** The kind of credential a target's sinks hold: a federated target's is a token. */
export const credentialKindOf = (target: {
  readonly credential: (typeof TARGET_CREDENTIALS)[number];
}): CredentialKind => (target.credential === 'certificate' ? 'certificate' : 'token');

const SIGNER_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
// Kubernetes user and group names: printable, no control characters; the approver refuses system: names.
const IDENTITY_NAME = /^[^\p{Cc}]{1,253}$/u;

const absolutePath = z.string().regex(/^\//, 'must be an absolute path');

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

export const rotationSchema = z
  .strictObject({
    minFraction: z
      .number()
      .gt(0)
      .lt(1)
      .default(0.7)
      .describe('Earliest rotation point, as a fraction of the lifetime.'),
    maxFraction: z.number().gt(0).lt(1).default(0.9).describe('Latest rotation point, as a fraction of the lifetime.'),
    minRemainingSeconds: z
      .number()
      .int()
      .min(0)
      .default(420)
      .describe(
        'Rotate no later than this many seconds before expiry, whatever the fractions say. The default leaves Go consumers their 300 s certificate reload (client-go) plus 2 minutes for retries.',
      ),
    forceIntervalSeconds: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Rotate at least this often, counted from when a certificate was obtained (demos and tests).'),
  })
  .refine((rule) => rule.minFraction <= rule.maxFraction, {
    error: 'minFraction must not exceed maxFraction',
    path: ['minFraction'],
  })
  .describe('When to renew: at a uniform random point between minFraction and maxFraction of the lifetime.');

/** A workload the restart action rolls (the chart's values make namespace optional). */
export const workloadSchema = z.strictObject({
  kind: z.enum(WORKLOAD_KINDS).describe('Kind of the workload (group apps).'),
  namespace: dnsLabel.describe('Namespace of the workload in the source cluster.'),
  name: dnsSubdomain.describe('Name of the workload.'),
});

/** The same workload named twice in one target's restart list: the path of each repeat and what it repeats. */
export function checkRestartList(
  workloads: readonly { kind: string; namespace?: string | undefined; name: string }[],
  context: z.RefinementCtx,
  path: readonly (string | number)[],
): void {
  const seen = new Map<string, number>();
  workloads.forEach((workload, index) => {
    const key = workloadKey({ kind: workload.kind, namespace: workload.namespace ?? '', name: workload.name });
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else context.addIssue({ code: 'custom', path: [...path, index], message: `duplicates restart[${String(first)}]` });
  });
}

/**
 * How a certificate target authenticates its first CSR (and any after its certificate expired): with the
 * bootstrap kubeconfig's credential (a bootstrap token, which expires), or with the pod's own ServiceAccount
 * token of the source cluster, which the target trusts by the source's issuer (docs/federation.md).
 */
export const BOOTSTRAP_WITH = ['token', 'federated'] as const;

/** A short-lived token is enough: it authenticates one CSR and its wait. */
export const DEFAULT_BOOTSTRAP_TOKEN_SECONDS = 600;

/** A field another kind has: absent here, and when given, refused by name with the kinds it is for. */
const refused = (message: string) => z.never({ error: message }).optional();

/** zod's message for a discriminator nobody has, in the words of its message for an enum. */
const expectedOneOf = (values: readonly string[]) => (issue: z.core.$ZodRawIssue) =>
  issue.code === 'invalid_union' && issue.note === 'No matching discriminator'
    ? `Invalid option: expected one of ${values.map((value) => JSON.stringify(value)).join('|')}`
    : undefined;

/** A field this kind requires: missing or empty, it says why. */
const requiredFor = (why: string) => ({
  error: (issue: z.core.$ZodRawIssue) => (issue.input === undefined ? `is required ${why}` : undefined),
});

const sourceServiceAccount = z.strictObject({
  namespace: dnsLabel.describe('Namespace of the ServiceAccount in the source.'),
  name: dnsSubdomain.describe('Name of the ServiceAccount in the source.'),
});

const FEDERATED_BOOTSTRAP_ONLY = 'is for with: federated only';

const tokenBootstrap = z.strictObject({
  with: z
    .literal('token')
    .default('token')
    .describe(
      "token: the bootstrap kubeconfig's own credential (`kubeconfig-rotator bootstrap`'s bootstrap token). federated: a token of the source's ServiceAccount for `audiences`, from the source's TokenRequest API, which the target trusts by the source's issuer (`kubeconfig-rotator bootstrap --credential certificate --bootstrap-with federated`); the bootstrap kubeconfig then needs no credential.",
    ),
  audiences: refused(FEDERATED_BOOTSTRAP_ONLY),
  serviceAccount: refused(FEDERATED_BOOTSTRAP_ONLY),
  expirationSeconds: refused(FEDERATED_BOOTSTRAP_ONLY),
});

const federatedBootstrap = z.strictObject({
  with: z.literal('federated'),
  serviceAccount: sourceServiceAccount
    .optional()
    .describe(
      "with: federated: the source ServiceAccount whose token is used; default: the sidecar pod's own (POD_NAMESPACE, POD_SERVICE_ACCOUNT).",
    ),
  expirationSeconds: z
    .number()
    .int()
    .min(600)
    .optional()
    .describe(
      `with: federated: the bootstrap token's lifetime (the TokenRequest API's minimum is 600); default ${String(DEFAULT_BOOTSTRAP_TOKEN_SECONDS)}.`,
    ),
  audiences: z
    .array(
      z.string().min(1),
      requiredFor("with federated bootstrap: the audience the target's jwt authenticator expects"),
    )
    .min(1, "is required with federated bootstrap: the audience the target's jwt authenticator expects")
    .describe("with: federated (required): the audience the target's jwt authenticator expects."),
});

export const bootstrapSchema = z
  .discriminatedUnion('with', [tokenBootstrap, federatedBootstrap], { error: expectedOneOf(BOOTSTRAP_WITH) })
  .describe(
    'Certificate targets: what authenticates the first CSR and any after the certificate expired (renewals use the certificate).',
  );

export type BootstrapConfig = z.output<typeof bootstrapSchema>;

/** Certificate-only fields' defaults. */
export const DEFAULT_REVOCATION_CHECK_SECONDS = 60;

const CERTIFICATE_DEFAULTS = {
  signerName: 'kubernetes.io/kube-apiserver-client',
  keyAlgorithm: 'ecdsa-p256',
  approvalTimeoutSeconds: 900,
} as const;

/** A target's ClusterProfile (docs/cluster-profile.md): where the sidecar keeps it in the source cluster. */
export const clusterProfileSchema = z
  .strictObject({
    namespace: dnsLabel
      .optional()
      .describe('Namespace of the ClusterProfile in the source cluster; default: clusterProfiles.namespace.'),
    name: dnsSubdomain.optional().describe("Name of the ClusterProfile; default: the target's name."),
    displayName: z
      .string()
      .min(1)
      .max(253)
      .optional()
      .describe("spec.displayName, the name people see; default: the target's name."),
  })
  .describe(
    'Keep a ClusterProfile (SIG-Multicluster Cluster Inventory API, multicluster.x-k8s.io/v1alpha1) for this target in the source cluster, with its version, health and how to get its credential (docs/cluster-profile.md).',
  );

const CREDENTIAL_DESCRIPTION =
  "What the target is served with: certificate (a client certificate through the CSR API and the approver; the default), token (a ServiceAccount token through the target's TokenRequest API, for targets that sign no client certificates, e.g. EKS; docs/tokens.md) or federated (a token of the source's own ServiceAccount, which the target trusts by its issuer; docs/federation.md).";

const revocationCheckSeconds = z
  .number()
  .int()
  .min(0)
  .default(DEFAULT_REVOCATION_CHECK_SECONDS)
  .describe(
    'Token and federated targets: how often to ask the target whether it still accepts the current token (a SelfSubjectReview), so a revocation is reported within this time rather than at the next renewal; 0: never.',
  );

/** Each kind's own fields (what only that kind has, and what it requires). */
const certificateFields = {
  credential: z.literal('certificate').default('certificate').describe(CREDENTIAL_DESCRIPTION),
  identity: z
    .strictObject(
      {
        commonName: z
          .string()
          .regex(IDENTITY_NAME, 'must be 1-253 printable characters')
          .describe('User name in the target (certificate CN).'),
        organizations: z
          .array(z.string().regex(IDENTITY_NAME, 'must be 1-253 printable characters'))
          .default([])
          .describe('Groups in the target (certificate O).'),
      },
      requiredFor('for a certificate target'),
    )
    .describe('Certificate targets (required): the identity the target cluster will see.'),
  signerName: z
    .string()
    .regex(SIGNER_NAME, 'must look like domain/name')
    .default(CERTIFICATE_DEFAULTS.signerName)
    .describe('Certificate targets: the CSR signer.'),
  keyAlgorithm: z
    .enum(KEY_ALGORITHMS)
    .default(CERTIFICATE_DEFAULTS.keyAlgorithm)
    .describe('Certificate targets: the key pair generated for each certificate.'),
  approvalTimeoutSeconds: z
    .number()
    .int()
    .min(5)
    .default(CERTIFICATE_DEFAULTS.approvalTimeoutSeconds)
    .describe('Certificate targets: give up on a CSR nobody decided within this time, and try again with a new one.'),
  signerCA: absolutePath
    .optional()
    .describe('Certificate targets: PEM CA the issued certificate must chain to (optional).'),
  bootstrap: bootstrapSchema.optional(),
};

const tokenFields = {
  credential: z.literal('token'),
  serviceAccount: z
    .strictObject(
      {
        namespace: dnsLabel.describe('Namespace of the ServiceAccount in the target.'),
        name: dnsSubdomain.describe(
          'Name of the ServiceAccount (`kubeconfig-rotator bootstrap --credential token` makes kcr-<source>).',
        ),
      },
      requiredFor('for a token target'),
    )
    .describe(
      "Token targets (required): the ServiceAccount in the target whose tokens are requested. Federated targets: the ServiceAccount in the source (default: the sidecar pod's own, from POD_NAMESPACE and POD_SERVICE_ACCOUNT).",
    ),
  leaseSecret: dnsSubdomain
    .optional()
    .describe(
      'Token targets: the Secret beside the ServiceAccount every token is bound to (deleting it revokes them all); default: <serviceAccount.name>-lease.',
    ),
  audiences: z
    .array(z.string().min(1))
    .default([])
    .describe(
      "Token targets: the tokens' audiences; default: the target apiserver's own. Federated targets (required): the audience the target's authenticator expects.",
    ),
  revocationCheckSeconds,
};

const federatedFields = {
  credential: z.literal('federated'),
  serviceAccount: sourceServiceAccount.optional(),
  audiences: z
    .array(z.string().min(1), requiredFor("for a federated target: the audience the target's authenticator expects"))
    .min(1, "is required for a federated target: the audience the target's authenticator expects"),
  targetUser: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Federated targets: the user the target's mapping gives the token (e.g. source-west:system:serviceaccount:agents:admiralty); each new token must authenticate as exactly this user before it is published. Default: any user the target accepts.",
    ),
  revocationCheckSeconds,
};

/** Why a field is refused in a kind that does not have it. */
const REFUSALS = {
  serviceAccount: 'is for token or federated targets only',
  audiences: 'is for token or federated targets only',
  leaseSecret: 'is for token targets only',
  targetUser: 'is for federated targets only',
  revocationCheckSeconds: 'is for token or federated targets only',
  identity: 'is for certificate targets only: a token carries its ServiceAccount',
  bootstrap: 'is for certificate targets only',
  signerName: 'is for certificate targets only',
  keyAlgorithm: 'is for certificate targets only',
  approvalTimeoutSeconds: 'is for certificate targets only',
  signerCA: 'is for certificate targets only',
} as const;

type Refused<K extends PropertyKey> = { [F in K]: ReturnType<typeof refused> };

/** The fields of the other kinds, each refused with its reason (in REFUSALS' order, so problems list stably). */
function refusing<Own extends object>(own: Own, kind: string): Refused<Exclude<keyof typeof REFUSALS, keyof Own>> {
  const entries = Object.entries(REFUSALS)
    .filter(([field]) => !(field in own))
    .map(([field, message]) => [
      field,
      refused(field === 'bootstrap' ? `${message}: a ${kind} target's own credential needs no bootstrap` : message),
    ]);
  return Object.fromEntries(entries) as Refused<Exclude<keyof typeof REFUSALS, keyof Own>>;
}

/**
 * The target schema for given common fields (the sidecar's, the charts', the injector's): one object per
 * credential kind, each with exactly its own fields, chosen by `credential` (certificate when omitted).
 */
export function byCredential<Common extends z.core.$ZodLooseShape>(common: Common) {
  const kind = <Own extends z.core.$ZodLooseShape>(own: Own, name: string) =>
    z.strictObject({ ...inOrder({ ...common, ...own }), ...refusing(own, name) });
  return z.discriminatedUnion(
    'credential',
    [kind(certificateFields, 'certificate'), kind(tokenFields, 'token'), kind(federatedFields, 'federated')],
    { error: expectedOneOf(TARGET_CREDENTIALS) },
  );
}

/** The order fields are checked, and so problems listed, in: as a target is usually written. */
const FIELD_ORDER = [
  'name',
  'bootstrapKubeconfig',
  'credential',
  'bootstrap',
  'identity',
  'serviceAccount',
  'leaseSecret',
  'audiences',
  'targetUser',
  'revocationCheckSeconds',
  'signerName',
  'keyAlgorithm',
  'expirationSeconds',
  'rotation',
  'approvalTimeoutSeconds',
  'signerCA',
  'server',
  'sinks',
  'restart',
  'clusterProfile',
];

const inOrder = <Shape extends object>(shape: Shape): Shape => {
  const rank = (key: string) => (FIELD_ORDER.includes(key) ? FIELD_ORDER.indexOf(key) : FIELD_ORDER.length);
  return Object.fromEntries(Object.entries(shape).sort(([a], [b]) => rank(a) - rank(b))) as Shape;
};

/** The fields every kind of target has. */
const commonFields = {
  name: dnsLabel.describe('Name of the target cluster, used in metrics and logs.'),
  bootstrapKubeconfig: absolutePath.describe(
    'Kubeconfig with the bootstrap credential (a mounted Secret); also gives the server and CA when no certificate exists yet.',
  ),
  expirationSeconds: z
    .number()
    .int()
    .min(600)
    .default(3600)
    .describe('Requested credential lifetime; the signer may shorten it.'),
  rotation: rotationSchema.default({ minFraction: 0.7, maxFraction: 0.9, minRemainingSeconds: 420 }),
  server: z
    .url({ protocol: /^https$/ })
    .optional()
    .describe("Target API server URL; default: the bootstrap kubeconfig's."),
  sinks: z
    .strictObject({
      directory: directorySinkSchema.optional(),
      secret: secretSinkSchema.optional(),
    })
    .refine((sinks) => sinks.directory !== undefined || sinks.secret !== undefined, {
      error: 'at least one sink (directory or secret) is required',
    })
    .describe('Where the kubeconfig is published.'),
  restart: z
    .array(workloadSchema)
    .default([])
    .describe(
      'Restart action (opt-in), for consumers that read their credential once and cannot mount the directory sink: after each rotation is published to every sink, roll these workloads as `kubectl rollout restart` does (pod template annotation kubectl.kubernetes.io/restartedAt), once per rotation; never after a repair or a certificate found at start. Needs RBAC patch on each, by name.',
    ),
  clusterProfile: clusterProfileSchema.optional(),
};

/**
 * The common fields of a target whose bootstrap kubeconfig comes from a Secret mounted into the pod (the Helm
 * chart and the injector), rather than from a path.
 */
// Without clusterProfile: an injected sidecar has no RBAC for ClusterProfiles (the sidecar chart adds it back).
export const mountedTargetFields = {
  name: commonFields.name,
  expirationSeconds: commonFields.expirationSeconds,
  rotation: commonFields.rotation,
  server: commonFields.server,
  restart: commonFields.restart,
  bootstrapSecret: z
    .strictObject({
      name: dnsSubdomain.describe("Secret made by `kubeconfig-rotator bootstrap`, in the pod's namespace."),
      key: z.string().min(1).default('kubeconfig'),
    })
    .describe("The bootstrap kubeconfig, mounted as the target's bootstrapKubeconfig."),
};

export const targetSchema = byCredential(commonFields).superRefine((target, context) => {
  if (target.rotation.minRemainingSeconds >= target.expirationSeconds)
    context.addIssue({
      code: 'custom',
      path: ['rotation', 'minRemainingSeconds'],
      message: 'must be less than expirationSeconds',
    });
  checkRestartList(target.restart, context, ['restart']);
  const secret = target.sinks.secret;
  if (secret?.reference !== undefined && target.sinks.directory === undefined)
    context.addIssue({
      code: 'custom',
      path: ['sinks', 'secret', 'reference'],
      message: 'needs a directory sink (the files it references)',
    });
  const clusterName = secret?.clusterName ?? target.name;
  if (secret?.format === 'cluster-api' && secret.name !== `${clusterName}-kubeconfig`)
    context.addIssue({
      code: 'custom',
      path: ['sinks', 'secret', 'name'],
      message: `must be ${clusterName}-kubeconfig (Cluster API reads <cluster>-kubeconfig)`,
    });
});

export const DEFAULT_HEALTH_CHECK_SECONDS = 30;

/** The sidecar-wide ClusterProfile settings: the default namespace, and whether every target gets one. */
export const clusterProfilesSchema = z
  .strictObject({
    namespace: dnsLabel.optional().describe("Default namespace of the targets' ClusterProfiles in the source cluster."),
    allTargets: z
      .boolean()
      .default(false)
      .describe(
        'Keep a ClusterProfile for every target, named after it, even one without its own clusterProfile (needs namespace).',
      ),
    healthCheckSeconds: z
      .number()
      .int()
      .min(1)
      .default(DEFAULT_HEALTH_CHECK_SECONDS)
      .describe("Ask each target's /readyz (ControlPlaneHealthy) and /version this often."),
  })
  .describe('ClusterProfiles (docs/cluster-profile.md): defaults for the targets that keep one.');

/** Where a target's ClusterProfile is, or undefined when it keeps none; the names as the schema checked them. */
export interface ClusterProfileRef {
  readonly namespace: string;
  readonly name: string;
  readonly displayName: string;
}

export function clusterProfileOf(
  defaults: z.output<typeof clusterProfilesSchema>,
  target: { readonly name: string; readonly clusterProfile?: z.output<typeof clusterProfileSchema> | undefined },
): ClusterProfileRef | undefined {
  const own = target.clusterProfile;
  if (own === undefined && !defaults.allTargets) return undefined;
  const namespace = own?.namespace ?? defaults.namespace;
  if (namespace === undefined) return undefined;
  return { namespace, name: own?.name ?? target.name, displayName: own?.displayName ?? target.name };
}

/** Every ClusterProfile has a namespace, and no two targets keep the same one. */
function checkClusterProfiles(
  config: {
    readonly clusterProfiles: z.output<typeof clusterProfilesSchema>;
    readonly targets: readonly {
      readonly name: string;
      readonly clusterProfile?: z.output<typeof clusterProfileSchema> | undefined;
    }[];
  },
  context: z.RefinementCtx,
): void {
  const defaults = config.clusterProfiles;
  if (defaults.allTargets && defaults.namespace === undefined)
    context.addIssue({
      code: 'custom',
      path: ['clusterProfiles', 'namespace'],
      message: 'is required with allTargets: true',
    });
  const seen = new Map<string, number>();
  config.targets.forEach((target, index) => {
    if (
      target.clusterProfile !== undefined &&
      target.clusterProfile.namespace === undefined &&
      defaults.namespace === undefined
    )
      context.addIssue({
        code: 'custom',
        path: ['targets', index, 'clusterProfile', 'namespace'],
        message: 'is required when clusterProfiles.namespace is not set',
      });
    const ref = clusterProfileOf(defaults, target);
    if (ref === undefined) return;
    const key = `${ref.namespace}/${ref.name}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, index);
    else
      context.addIssue({
        code: 'custom',
        path: ['targets', index, 'clusterProfile', 'name'],
        message: `ClusterProfile ${key} is also targets[${String(first)}]'s`,
      });
  });
}

export const sidecarConfigSchema = z
  .strictObject({
    targets: z
      .array(targetSchema)
      .min(1, 'at least one target is required')
      .describe('Target clusters to keep kubeconfigs for.'),
    stateDir: absolutePath
      .default('/var/lib/kubeconfig-rotator')
      .describe('Private directory for keys of requests still pending (mode 0700; an emptyDir).'),
    sourceKubeconfig: absolutePath
      .optional()
      .describe('Kubeconfig for the source cluster (Secret sinks, Events); default: in-cluster.'),
    listen: z
      .strictObject({
        host: z.string().default('0.0.0.0').describe('Address to listen on.'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(SIDECAR_PORT)
          .describe('Port; 0 picks a free one (logged at start).'),
      })
      .default({ host: '0.0.0.0', port: SIDECAR_PORT })
      .describe('Address of /healthz, /readyz and /metrics.'),
    logLevel: logLevel.default('info').describe('Log level; applies at once on reload.'),
    rereadIntervalSeconds: z
      .number()
      .int()
      .min(1)
      .default(60)
      .describe('Re-read inputs and outputs this often, as a backstop for file watching.'),
    clusterProfiles: clusterProfilesSchema.default({
      allTargets: false,
      healthCheckSeconds: DEFAULT_HEALTH_CHECK_SECONDS,
    }),
  })
  .superRefine(checkClusterProfiles)
  .superRefine((config, context) => {
    const seen = new Map<string, number>();
    config.targets.forEach((target, index) => {
      const first = seen.get(target.name);
      if (first !== undefined)
        context.addIssue({
          code: 'custom',
          path: ['targets', index, 'name'],
          message: `duplicates targets[${String(first)}].name`,
        });
      else seen.set(target.name, index);
    });
    const outputs = new Map<string, string>();
    config.targets.forEach((target, index) => {
      const claims: [string, string[]][] = [];
      if (target.sinks.directory !== undefined)
        claims.push([`dir:${target.sinks.directory.path}`, ['sinks', 'directory', 'path']]);
      if (target.sinks.secret !== undefined)
        claims.push([
          `secret:${target.sinks.secret.namespace}/${target.sinks.secret.name}`,
          ['sinks', 'secret', 'name'],
        ]);
      for (const [key, path] of claims) {
        const owner = outputs.get(key);
        if (owner !== undefined)
          context.addIssue({
            code: 'custom',
            path: ['targets', index, ...path],
            message: `is also the output of ${owner}`,
          });
        else outputs.set(key, `targets[${String(index)}]`);
      }
    });
  });

/** The config as the file says it; the sidecar runs on a SidecarConfig (src/sidecar/config.ts resolves one). */
export type ParsedSidecarConfig = z.output<typeof sidecarConfigSchema>;
export type ParsedTarget = ParsedSidecarConfig['targets'][number];
export type RotationRule = ParsedTarget['rotation'];

export interface ServiceAccountRef {
  readonly namespace: string;
  readonly name: string;
}

/** A source ServiceAccount whose tokens a target trusts, and the pod they are bound to when it is known. */
export interface SourceAccount {
  readonly serviceAccount: ServiceAccountRef;
  readonly boundTo: { readonly kind: 'Pod'; readonly name: string; readonly uid: string | undefined } | undefined;
}

type Kind<C extends ParsedTarget['credential']> = Extract<ParsedTarget, { credential: C }>;
type ParsedFederatedBootstrap = Extract<BootstrapConfig, { with: 'federated' }>;

/** Federated bootstrap with its source ServiceAccount known (the configured one or the pod's own). */
export type FederatedBootstrap = Omit<ParsedFederatedBootstrap, 'serviceAccount'> & SourceAccount;
export type CertificateTarget = Omit<Kind<'certificate'>, 'bootstrap'> & {
  readonly bootstrap?: Extract<BootstrapConfig, { with: 'token' }> | FederatedBootstrap | undefined;
};
export type TokenTarget = Kind<'token'>;
/** A federated target with its source ServiceAccount known (the configured one or the pod's own). */
export type FederatedTarget = Omit<Kind<'federated'>, 'serviceAccount'> & SourceAccount;
export type TargetConfig = CertificateTarget | TokenTarget | FederatedTarget;
export type SidecarConfig = Omit<ParsedSidecarConfig, 'targets'> & { readonly targets: readonly TargetConfig[] };
