// Writes charts/<chart>/values.schema.json from scripts/chart-schemas.ts. `--check` only compares and
// exits 1 when a file is out of date (the unit tests do the same).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { REPO_ROOT } from './testbed/binaries.ts';
import { CHART_SCHEMAS } from './chart-schemas.ts';

type Json = Record<string, unknown>;

/** The property every branch of a oneOf fixes with a const (a zod discriminated union's discriminator). */
function discriminatorOf(branches: readonly Json[]): string | undefined {
  const [first] = branches;
  const properties = (branch: Json) => (branch.properties ?? {}) as Record<string, Json>;
  return Object.keys(first === undefined ? {} : properties(first)).find((name) =>
    branches.every((branch) => properties(branch)[name]?.const !== undefined),
  );
}

/**
 * A discriminated union as an if/then/else chain on its discriminator rather than a oneOf: Helm then reports
 * the problems of the branch the value chose ("missing property 'serviceAccount'"), not of every branch. The
 * branch whose discriminator may be left out (its default) is the last else.
 */
function discriminatedAsConditions(context: { jsonSchema: Json }): void {
  const schema = context.jsonSchema;
  const branches = schema.oneOf as Json[] | undefined;
  if (branches === undefined) return;
  const key = discriminatorOf(branches);
  if (key === undefined) return;
  const value = (branch: Json) => ((branch.properties as Record<string, Json>)[key] as Json).const;
  const fallback = branches.find((branch) => !((branch.required ?? []) as string[]).includes(key));
  // Without a default branch, a value none names is refused by the list of those that exist.
  let chain: Json = fallback ?? { properties: { [key]: { enum: branches.map(value) } }, required: [key] };
  for (const branch of branches.filter((candidate) => candidate !== fallback).reverse())
    chain = { if: { properties: { [key]: { const: value(branch) } }, required: [key] }, then: branch, else: chain };
  delete schema.oneOf;
  Object.assign(schema, chain);
}

export function renderValuesSchema(schema: z.ZodType): string {
  const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'input', override: discriminatedAsConditions });
  return `${JSON.stringify(json, null, 2)}\n`;
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
