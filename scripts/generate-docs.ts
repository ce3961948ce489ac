// Writes docs/configuration.md, the configuration reference, from the schemas the programs validate their
// files with (the sidecar's config, the approver's policy). `--check` only compares; a unit test does too.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { sidecarConfigSchema } from '../src/core/config/sidecar.ts';
import { policyFileSchema } from '../src/core/policy/schema.ts';
import { REPO_ROOT } from './testbed/binaries.ts';

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  const?: unknown;
  not?: JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  pattern?: string;
}

export const CONFIGURATION_DOC = join(REPO_ROOT, 'docs', 'configuration.md');

/** A branch's name: the value of its discriminator (the one property every branch has as a const). */
function branchName(branch: JsonSchema): string {
  const constant = Object.values(branch.properties ?? {}).find((property) => property.const !== undefined);
  return typeof constant?.const === 'string' ? constant.const : '?';
}

/**
 * One table for a discriminated union (oneOf objects): each field once, as its first branch describes it, a
 * field refused in a branch (JSON Schema `not`) left out of it; "required" says in which branches.
 */
function merged(schema: JsonSchema): { schema: JsonSchema; requiredIn: Map<string, string> } {
  const branches = schema.oneOf ?? [];
  const properties: Record<string, JsonSchema> = {};
  const owners = new Map<string, JsonSchema[]>();
  for (const branch of branches)
    for (const [name, property] of Object.entries(branch.properties ?? {})) {
      if (property.not !== undefined) continue;
      owners.set(name, [...(owners.get(name) ?? []), branch]);
      const first = properties[name];
      // The discriminator: one value per branch, shown as the values it may take.
      const values = property.const === undefined ? [] : [property.const];
      if (first === undefined) properties[name] = values.length === 0 ? property : { ...property, enum: values };
      else if (values.length > 0) properties[name] = { ...first, enum: [...(first.enum ?? []), ...values] };
    }
  const requiredIn = new Map<string, string>();
  for (const [name, having] of owners) {
    const requiring = having.filter((branch) => branch.required?.includes(name) === true);
    if (requiring.length === 0) continue;
    requiredIn.set(
      name,
      requiring.length === branches.length ? 'required' : `required (${requiring.map(branchName).join(', ')})`,
    );
  }
  return { schema: { ...schema, type: 'object', properties }, requiredIn };
}

function typeOf(schema: JsonSchema): string {
  if (schema.oneOf !== undefined) return [...new Set(schema.oneOf.map(typeOf))].join(' or ');
  if (schema.enum !== undefined) return schema.enum.map((value) => `\`${String(value)}\``).join(' \\| ');
  if (schema.anyOf !== undefined) return schema.anyOf.map(typeOf).join(' or ');
  if (schema.type === 'array') return `list of ${schema.items === undefined ? 'values' : typeOf(schema.items)}`;
  return Array.isArray(schema.type) ? schema.type.join(' or ') : (schema.type ?? 'any');
}

function limits(schema: JsonSchema): string {
  const parts: string[] = [];
  if (schema.minimum !== undefined) parts.push(`>= ${String(schema.minimum)}`);
  if (schema.exclusiveMinimum !== undefined) parts.push(`> ${String(schema.exclusiveMinimum)}`);
  if (schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER)
    parts.push(`<= ${String(schema.maximum)}`);
  if (schema.exclusiveMaximum !== undefined) parts.push(`< ${String(schema.exclusiveMaximum)}`);
  return parts.join(', ');
}

function rows(given: JsonSchema, path: string, required: string, out: string[]): void {
  const schema = given.oneOf === undefined ? given : merged(given).schema;
  if (path !== '') {
    const defaultText = schema.default === undefined ? required : `\`${JSON.stringify(schema.default)}\``;
    const description = [schema.description ?? '', limits(schema)].filter((part) => part !== '').join(' ');
    out.push(`| \`${path}\` | ${typeOf(schema)} | ${defaultText} | ${description.replaceAll('|', '\\|')} |`);
  }
  const items = schema.type === 'array' ? schema.items : schema;
  const union = items?.oneOf === undefined ? undefined : merged(items);
  const objectSchema = union?.schema ?? items;
  for (const [name, child] of Object.entries(objectSchema?.properties ?? {})) {
    const childPath = schema.type === 'array' ? `${path}[].${name}` : path === '' ? name : `${path}.${name}`;
    const childRequired =
      union?.requiredIn.get(name) ?? (objectSchema?.required?.includes(name) === true ? 'required' : '');
    rows(child, childPath, childRequired, out);
  }
}

function table(title: string, intro: string, schema: z.ZodType): string {
  const out = [`## ${title}`, '', intro, '', '| field | type | default | meaning |', '|---|---|---|---|'];
  rows(z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) as JsonSchema, '', 'required', out);
  return out.join('\n');
}

export function renderConfigurationDoc(): string {
  return `${[
    '# Configuration reference',
    '',
    'Generated from the schemas the programs validate their files with (`npm run generate:docs`); do not edit.',
    'Each program lists every problem of a bad file with its field path and line, and exits with status 2 at',
    'start (a bad file at run time is rejected and the previous one stays in use).',
    '',
    table(
      'Sidecar (`kubeconfig-rotator sidecar --config FILE`)',
      'See docs/sidecar.md for what each setting does.',
      sidecarConfigSchema,
    ),
    '',
    table(
      'Approver policy (`kubeconfig-rotator approver --policy FILE`)',
      'See docs/approver.md for how a CSR is judged.',
      policyFileSchema,
    ),
  ].join('\n')}\n`;
}

if (import.meta.main) {
  const wanted = renderConfigurationDoc();
  let current: string | undefined;
  try {
    current = readFileSync(CONFIGURATION_DOC, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === wanted) process.exitCode = 0;
  else if (process.argv.includes('--check')) {
    process.stderr.write(`${CONFIGURATION_DOC} is out of date: run npm run generate:docs\n`);
    process.exitCode = 1;
  } else writeFileSync(CONFIGURATION_DOC, wanted);
}
