// Writes charts/<chart>/values.schema.json from scripts/chart-schemas.ts. `--check` only compares and
// exits 1 when a file is out of date (the unit tests do the same).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { REPO_ROOT } from './testbed/binaries.ts';
import { CHART_SCHEMAS } from './chart-schemas.ts';

export function renderValuesSchema(schema: z.ZodType): string {
  return `${JSON.stringify(z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }), null, 2)}\n`;
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function valuesSchemaPath(chart: string): string {
  return join(REPO_ROOT, 'charts', chart, 'values.schema.json');
}

if (import.meta.main) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [chart, schema] of Object.entries(CHART_SCHEMAS)) {
    const path = valuesSchemaPath(chart);
    const wanted = renderValuesSchema(schema);
    if (readIfExists(path) === wanted) continue;
    if (check) {
      process.stderr.write(`${path} is out of date: run npm run generate:schemas\n`);
      stale++;
    } else {
      writeFileSync(path, wanted);
      process.stderr.write(`wrote ${path}\n`);
    }
  }
  process.exitCode = stale > 0 ? 1 : 0;
}
