// Shared by the benchmarks: quantiles, a worker pool, and raw samples kept for the report's latency picture
// (KCR_BENCH_SAMPLES_DIR, set by bench/report.ts; nothing is written when it is unset).
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export function recordSamples(name: string, values: readonly number[]): void {
  const dir = process.env.KCR_BENCH_SAMPLES_DIR;
  if (dir !== undefined) writeFileSync(join(dir, `${name}.json`), JSON.stringify(values));
}

export interface Figure {
  readonly benchmark: string;
  readonly measure: string;
  readonly ours: number;
  /** The reference measured in the same run, when there is one. */
  readonly reference?: number;
  readonly unit: string;
}

/** One row of the report's summary table (appended to figures.jsonl in the samples directory). */
export function recordFigure(figure: Figure): void {
  const dir = process.env.KCR_BENCH_SAMPLES_DIR;
  if (dir !== undefined) appendFileSync(join(dir, 'figures.jsonl'), `${JSON.stringify(figure)}\n`);
}

/**
 * Runs `work` on every item, `workers` at a time (N workers taking from one queue). Resolves once every
 * worker has finished; after a failure no worker takes another item, and the first error is thrown.
 */
export async function withWorkers<T>(
  items: readonly T[],
  workers: number,
  work: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const results = await Promise.allSettled(
    Array.from({ length: workers }, async () => {
      while (!failed && next < items.length) {
        const item = items[next++] as T;
        try {
          await work(item);
        } catch (error) {
          failed = true;
          throw error;
        }
      }
    }),
  );
  const failure = results.find((result) => result.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
}
