// What each subcommand of the command line is (its summary, usage, flags and run function), and the option
// helpers and flags several commands share. src/cli.ts assembles the commands into its table.
import type { ParseArgsConfig } from 'node:util';
import type { ClusterPair } from '../bootstrap/kube.ts';

export type OptionsSpec = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options: OptionsSpec;
  readonly allowPositionals: boolean;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

export class UsageError extends Error {}

export function requireOption(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

export function optionalString(values: Record<string, unknown>, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** The flags naming a source and a target cluster, shared by the operator's commands that act on both. */
export const CLUSTER_PAIR_OPTIONS = {
  'target-kubeconfig': { type: 'string' },
  'target-context': { type: 'string' },
  'source-kubeconfig': { type: 'string' },
  'source-context': { type: 'string' },
  'source-name': { type: 'string' },
  'target-name': { type: 'string' },
} as const satisfies OptionsSpec;

export function clusterPairOf(values: Record<string, unknown>): ClusterPair {
  return {
    targetKubeconfig: optionalString(values, 'target-kubeconfig'),
    targetContext: optionalString(values, 'target-context'),
    sourceKubeconfig: optionalString(values, 'source-kubeconfig'),
    sourceContext: optionalString(values, 'source-context'),
    source: requireOption(values, 'source-name'),
    target: requireOption(values, 'target-name'),
  };
}

export async function withShutdownSignal(run: (signal: AbortSignal) => Promise<number>): Promise<number> {
  const { shutdownSignal } = await import('../io/lifecycle.ts');
  const shutdown = shutdownSignal();
  try {
    return await run(shutdown.abort);
  } finally {
    shutdown.dispose();
  }
}
