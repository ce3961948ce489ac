// The Helm charts' values, as zod schemas built from the same schemas the programs validate their own
// configuration with: values.schema.json is generated from these (scripts/generate-schemas.ts), never
// written by hand, and a unit test fails when a committed file is out of date.
import { z } from 'zod';
import { directorySinkSchema, secretSinkSchema, sidecarConfigSchema, targetFields } from '../src/core/config/sidecar.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
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
  nameOverride: z.string(),
  fullnameOverride: z.string(),
  // Helm passes parent charts' globals to subcharts.
  global: passThrough.optional(),
};

const sidecarTarget = targetFields.omit({ bootstrapKubeconfig: true, sinks: true }).extend({
  bootstrapSecret: z
    .strictObject({
      name: z.string().regex(DNS_SUBDOMAIN, 'must be a Secret name').describe('Secret made by `kubeconfig-rotator bootstrap` in the release namespace.'),
      key: z.string().min(1).default('kubeconfig'),
    })
    .describe('The bootstrap kubeconfig, mounted as the target\'s bootstrapKubeconfig.'),
  sinks: z
    .strictObject({
      directory: directorySinkSchema.partial({ path: true }).optional().describe('Sidecar mode: path defaults to <outputPath>/<name>.'),
      secret: secretSinkSchema.partial({ namespace: true }).optional().describe('Namespace defaults to the release namespace.'),
    })
    .refine((sinks) => sinks.directory !== undefined || sinks.secret !== undefined, { error: 'at least one sink (directory or secret) is required' }),
});

export const sidecarChartValues = z.strictObject({
  ...commonPodFields,
  mode: z.enum(['standalone', 'sidecar']).describe('standalone: a Deployment of its own; sidecar: added to another chart\'s pods.'),
  agentServiceAccountName: z.string().describe('Sidecar mode: the ServiceAccount of the pod the sidecar joins.'),
  targets: z.array(sidecarTarget),
  outputPath: z.string().regex(/^\//, 'must be an absolute path'),
  outputVolumeName: z.string().regex(DNS_LABEL, 'must be a DNS label'),
  startupTimeoutSeconds: z.number().int().min(2),
  config: z.strictObject({
    port: z.number().int().min(1).max(65535),
    logLevel: sidecarConfigSchema.shape.logLevel,
    rereadIntervalSeconds: sidecarConfigSchema.shape.rereadIntervalSeconds,
  }),
  serviceAccount: z.strictObject({ create: z.boolean(), name: z.string(), annotations: stringMap }),
  rbac: z.strictObject({ create: z.boolean() }),
  service: z.strictObject({ enabled: z.boolean(), port: z.number().int().min(1).max(65535) }),
  serviceMonitor: z.strictObject({ enabled: z.boolean(), interval: z.string().regex(DURATION, 'must be a duration like 30s'), labels: stringMap, podSelector: stringMap }),
  prometheusRule: z.strictObject({
    enabled: z.boolean(),
    labels: stringMap,
    rotationFailingFor: z.string().regex(DURATION, 'must be a duration like 15m'),
    expiringSoonFraction: z.number().gt(0).lt(1),
    notReadyFor: z.string().regex(DURATION, 'must be a duration like 10m'),
  }),
});

export const CHART_SCHEMAS: Record<string, z.ZodType> = {
  'kubeconfig-rotator-sidecar': sidecarChartValues,
};
