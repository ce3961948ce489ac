// ClusterProfiles in the sidecar's configuration (docs/cluster-profile.md): a target's own, the sidecar-wide
// defaults, where each one is, and the checks that span targets.
import { z } from 'zod';
import { dnsLabel, dnsSubdomain } from './fields.ts';

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
export function checkClusterProfiles(
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
