// When a target's credential is renewed, and the workloads rolled after each rotation (the restart action).
import { z } from 'zod';
import { WORKLOAD_KINDS, workloadKey } from '../restart/workload.ts';
import { dnsLabel, dnsSubdomain } from './fields.ts';

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
