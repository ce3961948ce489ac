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
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  pattern?: string;
}

export const CONFIGURATION_DOC = join(REPO_ROOT, 'docs', 'configuration.md');

function typeOf(schema: JsonSchema): string {
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

function rows(schema: JsonSchema, path: string, required: boolean, out: string[]): void {
  if (path !== '') {
    const defaultText =
      schema.default === undefined ? (required ? 'required' : '') : `\`${JSON.stringify(schema.default)}\``;
    const description = [schema.description ?? '', limits(schema)].filter((part) => part !== '').join(' ');
    out.push(`| \`${path}\` | ${typeOf(schema)} | ${defaultText} | ${description.replaceAll('|', '\\|')} |`);
  }
  const objectSchema = schema.type === 'array' ? schema.items : schema;
  for (const [name, child] of Object.entries(objectSchema?.properties ?? {})) {
    const childPath = schema.type === 'array' ? `${path}[].${name}` : path === '' ? name : `${path}.${name}`;
    rows(child, childPath, objectSchema?.required?.includes(name) ?? false, out);
  }
}

function table(title: string, intro: string, schema: z.ZodType): string {
  const out = [`## ${title}`, '', intro, '', '| field | type | default | meaning |', '|---|---|---|---|'];
  rows(z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) as JsonSchema, '', true, out);
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
