// The sidecar's configuration file: its schema (also the source of the Helm chart's values.schema.json),
// defaults, and the checks that span fields. A target's parts have modules of their own: sinks.ts,
// rotation.ts (and the restart action), bootstrap.ts, cluster-profile.ts.
import { z } from 'zod';
import { KEY_ALGORITHMS } from '../pki/keys.ts';
import type { CredentialKind } from '../credential/credential.ts';
import { bootstrapSchema, type BootstrapConfig } from './bootstrap.ts';
import {
  checkClusterProfiles,
  clusterProfileSchema,
  clusterProfilesSchema,
  DEFAULT_HEALTH_CHECK_SECONDS,
} from './cluster-profile.ts';
import {
  absolutePath,
  dnsLabel,
  dnsSubdomain,
  expectedOneOf,
  logLevel,
  refused,
  requiredFor,
  sourceServiceAccount,
} from './fields.ts';
import { checkRestartList, rotationSchema, workloadSchema } from './rotation.ts';
import { directorySinkSchema, secretSinkSchema } from './sinks.ts';

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

/** Certificate-only fields' defaults. */
export const DEFAULT_REVOCATION_CHECK_SECONDS = 60;

const CERTIFICATE_DEFAULTS = {
  signerName: 'kubernetes.io/kube-apiserver-client',
  keyAlgorithm: 'ecdsa-p256',
  approvalTimeoutSeconds: 900,
} as const;

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
