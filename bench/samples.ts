// Shared by the benchmarks: quantiles, and raw samples kept for the report's latency picture
// (KCR_BENCH_SAMPLES_DIR, set by bench/report.ts; nothing is written when it is unset).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export function recordSamples(name: string, values: readonly number[]): void {
  const dir = process.env.KCR_BENCH_SAMPLES_DIR;
  if (dir !== undefined) writeFileSync(join(dir, `${name}.json`), JSON.stringify(values));
}
