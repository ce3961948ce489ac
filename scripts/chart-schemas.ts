// The Helm charts' values, as zod schemas built from the same schemas the programs validate their own
// configuration with: values.schema.json is generated from these (scripts/generate-schemas.ts), never
// written by hand, and a unit test fails when a committed file is out of date.
import { z } from 'zod';
import { byCredential, mountedTargetFields, sidecarConfigSchema } from '../src/core/config/sidecar.ts';
import { clusterProfileSchema, clusterProfilesSchema } from '../src/core/config/cluster-profile.ts';
import { checkRestartList, workloadSchema } from '../src/core/config/rotation.ts';
import { checkSecretSink, directorySinkSchema, secretSinkFields } from '../src/core/config/sinks.ts';
import { dnsLabel, LOG_LEVELS } from '../src/core/config/fields.ts';
import { injectorConfigSchema } from '../src/core/config/injector.ts';
import { policyFileSchema } from '../src/core/policy/schema.ts';

const DURATION = /^(\d+(ms|s|m|h|d))+$/;

/** Kubernetes objects passed through to the manifests as they are (securityContext, resources...). */
const passThrough = z.record(z.string(), z.unknown());
const stringMap = z.record(z.string(), z.string());

const image = z.strictObject({
  repository: z.string().min(1).describe('Image repository.'),
  tag: z.string().describe("Image tag; the chart's appVersion when empty."),
  pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']),
});

const commonPodFields = {
  image,
  imagePullSecrets: z.array(z.strictObject({ name: z.string().min(1) })),
  podSecurityContext: passThrough,
  securityContext: passThrough,
  resources: passThrough,
  podAnnotations: stringMap,
  podLabels: stringMap,
  priorityClassName: z.string(),
  nodeSelector: stringMap,
  tolerations: z.array(passThrough),
  affinity: passThrough,
  topologySpreadConstraints: z.array(passThrough),
  strategy: passThrough.describe("The Deployment's update strategy."),
  extraArgs: z.array(z.string()).describe("Arguments added after the program's own."),
  extraEnv: z.array(passThrough).describe('Environment variables (EnvVar objects) added to the container.'),
  nameOverride: z.string(),
  fullnameOverride: z.string(),
  // Helm passes parent charts' globals to subcharts.
  global: passThrough.optional(),
};

// One object per credential kind (JSON Schema oneOf), as the sidecar's own config; the chart's defaults added.
const sidecarTarget = byCredential({
  ...mountedTargetFields,
  sinks: z
    .strictObject({
      directory: directorySinkSchema
        .partial({ path: true })
        .optional()
        .describe('Sidecar mode: path defaults to <outputPath>/<name>.'),
      secret: secretSinkFields
        .partial({ namespace: true })
        .superRefine(checkSecretSink)
        .optional()
        .describe('Namespace defaults to the release namespace.'),
    })
    .refine((sinks) => sinks.directory !== undefined || sinks.secret !== undefined, {
      error: 'at least one sink (directory or secret) is required',
    }),
  restart: z
    .array(workloadSchema.partial({ namespace: true }))
    .superRefine((workloads, context) => {
      checkRestartList(workloads, context, []);
    })
    .optional()
    .describe(
      `${String(mountedTargetFields.restart.description)} Namespace defaults to the release namespace; the chart grants patch on these names.`,
    ),
  clusterProfile: clusterProfileSchema
    .optional()
    .describe(
      `${String(clusterProfileSchema.description)} Namespace defaults to clusterProfiles.namespace, then the release namespace; the chart grants access to this name.`,
    ),
});

export const sidecarChartValues = z.strictObject({
  ...commonPodFields,
  mode: z
    .enum(['standalone', 'sidecar'])
    .describe("standalone: a Deployment of its own; sidecar: added to another chart's pods."),
  agentServiceAccountName: z.string().describe('Sidecar mode: the ServiceAccount of the pod the sidecar joins.'),
  targets: z.array(sidecarTarget),
  outputPath: z.string().regex(/^\//, 'must be an absolute path'),
  outputVolumeName: dnsLabel,
  startupTimeoutSeconds: z.number().int().min(2),
  config: z.strictObject({
    port: z.number().int().min(1).max(65535),
    logLevel: sidecarConfigSchema.shape.logLevel,
    rereadIntervalSeconds: sidecarConfigSchema.shape.rereadIntervalSeconds,
  }),
  serviceAccount: z.strictObject({ create: z.boolean(), name: z.string(), annotations: stringMap }),
  rbac: z.strictObject({ create: z.boolean() }),
  clusterProfiles: z.strictObject({
    installCRD: z
      .boolean()
      .describe(
        'Install the ClusterProfile CRD (multicluster.x-k8s.io) of sigs.k8s.io/cluster-inventory-api; off by default, since a cluster manager may own it.',
      ),
    namespace: z
      .union([z.literal(''), clusterProfilesSchema.shape.namespace.unwrap()])
      .describe("Default namespace of the targets' ClusterProfiles; empty: the release namespace."),
    allTargets: clusterProfilesSchema.shape.allTargets
      .unwrap()
      .describe(String(clusterProfilesSchema.shape.allTargets.description)),
    healthCheckSeconds: clusterProfilesSchema.shape.healthCheckSeconds
      .unwrap()
      .describe(String(clusterProfilesSchema.shape.healthCheckSeconds.description)),
  }),
  service: z.strictObject({ enabled: z.boolean(), port: z.number().int().min(1).max(65535) }),
  serviceMonitor: z.strictObject({
    enabled: z.boolean(),
    interval: z.string().regex(DURATION, 'must be a duration like 30s'),
    labels: stringMap,
    podSelector: stringMap,
  }),
  injector: z.strictObject({
    enabled: z.boolean(),
    replicaCount: z.number().int().min(1),
    failurePolicy: z.enum(['Fail', 'Ignore']),
    timeoutSeconds: z.number().int().min(1).max(30),
    namespaceSelector: passThrough,
    objectSelector: passThrough,
    profiles: injectorConfigSchema.shape.profiles,
    agentServiceAccounts: z
      .array(
        z.strictObject({
          namespace: dnsLabel,
          name: z.string().min(1),
          referenceSecrets: z
            .array(z.string().min(1))
            .optional()
            .describe(
              'Secrets its pods publish in reference mode (annotation kubeconfig-rotator.io/reference-secret), in its namespace.',
            ),
        }),
      )
      .describe(
        'ServiceAccounts of injected pods: each gets create/patch on Events in its namespace, and write access to its referenceSecrets.',
      ),
    certificates: z.strictObject({
      mode: z.enum(['self-managed', 'cert-manager']),
      servingLifetimeSeconds: z.number().int().min(60),
      issuerRef: passThrough,
      certManagerDuration: z.string().regex(DURATION, 'must be a duration like 2160h'),
    }),
    resources: passThrough,
  }),
  prometheusRule: z.strictObject({
    enabled: z.boolean(),
    labels: stringMap,
    rotationFailingFor: z.string().regex(DURATION, 'must be a duration like 15m'),
    expiringSoonFraction: z.number().gt(0).lt(1),
    notReadyFor: z.string().regex(DURATION, 'must be a duration like 10m'),
  }),
});

// The policy's own fields (its schema has cross-field checks, so it is taken apart, not .pick()ed).
const policyFields = policyFileSchema.shape.policies.element.shape;

const source = z.strictObject({
  name: dnsLabel
    .max(48)
    .describe("The source cluster, as given to `kubeconfig-rotator bootstrap --source-name`; also the policy's name."),
  identity: policyFields.identity,
  renewal: policyFields.renewal,
  maxExpirationSeconds: policyFields.maxExpirationSeconds,
  dryRun: policyFields.dryRun,
  subjectAccessReview: policyFields.subjectAccessReview,
  bootstrap: policyFields.bootstrap.describe("Bootstrap identities besides the source's own group."),
  rbacSubjects: z
    .enum(['commonNames', 'organizations'])
    .default('commonNames')
    .describe("Bind RBAC to the identity's exact common names (users) or its organizations (groups)."),
  clusterRoles: z.array(z.string().min(1)).default([]).describe('ClusterRoles bound to the identity in this cluster.'),
  roleBindings: z
    .array(
      z.strictObject({
        namespace: dnsLabel,
        kind: z.enum(['ClusterRole', 'Role']).default('ClusterRole'),
        name: z.string().min(1),
      }),
    )
    .default([])
    .describe('Namespaced roles bound to the identity.'),
});

export const approverChartValues = z.strictObject({
  ...commonPodFields,
  replicaCount: z.number().int().min(1),
  signerName: policyFileSchema.shape.signerName,
  denyUnmatched: policyFileSchema.shape.denyUnmatched,
  sources: z.array(source).superRefine((sources, context) => {
    const seen = new Set<string>();
    sources.forEach((entry, index) => {
      if (seen.has(entry.name))
        context.addIssue({ code: 'custom', path: [index, 'name'], message: `duplicates the source "${entry.name}"` });
      seen.add(entry.name);
    });
  }),
  port: z.number().int().min(1).max(65535),
  workers: z.number().int().min(1).max(100),
  kubeApi: z.strictObject({ qps: z.number().min(0), burst: z.number().int().min(1) }),
  logLevel: z.enum([...LOG_LEVELS, 'silent']),
  serviceAccount: z.strictObject({ create: z.boolean(), name: z.string(), annotations: stringMap }),
  rbac: z.strictObject({ create: z.boolean() }),
  podDisruptionBudget: z.strictObject({
    enabled: z.boolean(),
    minAvailable: z.union([z.number().int().min(0), z.string().regex(/^\d+%$/)]),
  }),
  service: z.strictObject({ enabled: z.boolean(), port: z.number().int().min(1).max(65535) }),
  serviceMonitor: z.strictObject({
    enabled: z.boolean(),
    interval: z.string().regex(DURATION, 'must be a duration like 30s'),
    labels: stringMap,
  }),
  prometheusRule: z.strictObject({
    enabled: z.boolean(),
    labels: stringMap,
    job: z.string(),
    pendingFor: z.string().regex(DURATION, 'must be a duration like 15m'),
    denialThreshold: z.number().int().min(0),
  }),
});

export const CHART_SCHEMAS: Record<string, z.ZodType> = {
  'kubeconfig-rotator-sidecar': sidecarChartValues,
  'kubeconfig-rotator-approver': approverChartValues,
};
