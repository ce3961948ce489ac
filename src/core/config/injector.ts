// The injector's configuration file: where it listens, how it gets its serving certificate, and what it
// injects (the sidecar container's settings and a catalog of targets that pods pick by annotation).
import { z } from 'zod';
import { dnsLabel, logLevel } from './fields.ts';
import { byCredential, mountedTargetFields, SIDECAR_PORT } from './sidecar.ts';

const absolutePath = z.string().regex(/^\//, 'must be an absolute path');
const passThrough = z.record(z.string(), z.unknown());

const endpoint = (port: number) =>
  z
    .strictObject({ host: z.string().default('0.0.0.0'), port: z.number().int().min(0).max(65535).default(port) })
    .default({ host: '0.0.0.0', port });

// An injected sidecar shares its directory with the agent in its pod: no restart action to configure.
export const injectedTargetSchema = byCredential({
  ...z.object(mountedTargetFields).omit({ restart: true }).shape,
  embed: z
    .boolean()
    .default(false)
    .describe('Publish a self-contained kubeconfig instead of one referencing tls.crt/tls.key/ca.crt.'),
});

const selfManagedTls = z.strictObject({
  mode: z
    .literal('self-managed')
    .describe(
      'The injector keeps a CA in a Secret, issues and rotates its own serving certificate, and keeps caBundle up to date.',
    ),
  secret: z
    .strictObject({ namespace: dnsLabel, name: z.string().min(1) })
    .describe('Secret holding the CA (shared by the replicas).'),
  webhookConfiguration: z.string().min(1).describe('MutatingWebhookConfiguration whose caBundle is kept current.'),
  dnsNames: z
    .array(z.string().min(1))
    .default([])
    .describe("Names in the serving certificate, e.g. the Service's <name>.<namespace>.svc."),
  ipAddresses: z.array(z.ipv4().or(z.ipv6())).default([]),
  servingLifetimeSeconds: z
    .number()
    .int()
    .min(10)
    .default(86_400)
    .describe('Serving certificates are renewed at two thirds of this.'),
  caLifetimeSeconds: z
    .number()
    .int()
    .min(60)
    .default(5 * 365 * 86_400)
    .describe('The CA is replaced at two thirds of this; old and new are both trusted meanwhile.'),
});

const fileTls = z.strictObject({
  mode: z
    .literal('files')
    .describe("Serving certificate from files (e.g. a cert-manager Certificate's Secret), re-read when they change."),
  certFile: absolutePath,
  keyFile: absolutePath,
});

export const injectorConfigSchema = z
  .strictObject({
    listen: endpoint(8443).describe('The HTTPS webhook.'),
    probes: endpoint(8080).describe('/healthz, /readyz and /metrics (plain HTTP).'),
    tls: z.discriminatedUnion('mode', [selfManagedTls, fileTls]),
    sidecar: z
      .strictObject({
        image: z.string().min(1).describe('The kubeconfig-rotator image the injected sidecar runs.'),
        imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).default('IfNotPresent'),
        port: z
          .number()
          .int()
          .min(1)
          .max(65535)
          .default(SIDECAR_PORT)
          .describe("Port of the injected sidecar's probes, in the pod's network namespace."),
        outputPath: absolutePath.default('/var/run/kubeconfig-rotator/out'),
        logLevel: logLevel.default('info'),
        startupTimeoutSeconds: z.number().int().min(2).default(300),
        // The chart's sidecar resources (values.yaml), from the measured idle and peak RSS (docs/sidecar.md).
        resources: passThrough.default({ requests: { cpu: '10m', memory: '112Mi' }, limits: { memory: '192Mi' } }),
        securityContext: passThrough
          .default({
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          })
          .describe(
            'runAsUser and runAsGroup are copied from the agent container when it sets them (to read tls.key).',
          ),
      })
      .describe('The injected sidecar container.'),
    // A target the injected sidecar would refuse at start is refused here, by field path.
    targets: z.array(injectedTargetSchema).describe('Targets pods may ask for by name.'),
    profiles: z.record(dnsLabel, z.array(dnsLabel).min(1)).default({}).describe('Named sets of targets.'),
    logLevel: logLevel.default('info'),
  })
  .superRefine((config, context) => {
    const names = new Set<string>();
    config.targets.forEach((target, index) => {
      if (names.has(target.name))
        context.addIssue({
          code: 'custom',
          path: ['targets', index, 'name'],
          message: `duplicates the target "${target.name}"`,
        });
      names.add(target.name);
    });
    for (const [profile, members] of Object.entries(config.profiles)) {
      members.forEach((member, index) => {
        if (!names.has(member))
          context.addIssue({
            code: 'custom',
            path: ['profiles', profile, index],
            message: `names no target ("${member}")`,
          });
      });
      if (names.has(profile))
        context.addIssue({ code: 'custom', path: ['profiles', profile], message: 'is also the name of a target' });
    }
  });

export type InjectorConfig = z.output<typeof injectorConfigSchema>;
export type InjectedTarget = InjectorConfig['targets'][number];
