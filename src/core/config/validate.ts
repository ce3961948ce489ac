// Reading a YAML configuration against a schema, collecting every problem (YAML syntax and schema alike)
// with its field path and line, so a bad file is fixed in one pass.
import { LineCounter, parseDocument, isNode } from 'yaml';
import type { z } from 'zod';

export interface Problem {
  /** Field path, e.g. targets[0].identity.commonName; empty for the document itself. */
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

export type Validated<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problems: readonly Problem[] };

export class ConfigError extends Error {
  readonly problems: readonly Problem[];
  constructor(source: string, problems: readonly Problem[], options?: ErrorOptions) {
    super(formatProblems(source, problems), options);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, part) => {
    if (typeof part === 'number') return `${out}[${String(part)}]`;
    const name = String(part);
    const safe = /^[A-Za-z_$][\w$-]*$/.test(name) ? name : JSON.stringify(name);
    return out === '' ? safe : `${out}.${safe}`;
  }, '');
}

export function formatProblems(source: string, problems: readonly Problem[]): string {
  const lines = problems.map((problem) => {
    const where =
      problem.line === undefined ? source : `${source}:${String(problem.line)}:${String(problem.column ?? 1)}`;
    return `  ${where}: ${problem.path === '' ? '' : `${problem.path}: `}${problem.message}`;
  });
  return `${source}: ${String(problems.length)} problem${problems.length === 1 ? '' : 's'}\n${lines.join('\n')}`;
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current = data;
  for (const part of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

function describeIssue(issue: z.core.$ZodIssue, data: unknown): { path: PropertyKey[]; message: string }[] {
  const path = [...issue.path];
  if (issue.code === 'unrecognized_keys')
    return issue.keys.map((key) => ({ path: [...path, key], message: 'unknown field' }));
  // zod's generic words for a missing field; a schema's own message (one that says why) is kept.
  if (issue.code === 'invalid_type' && valueAt(data, path) === undefined && issue.message.startsWith('Invalid input'))
    return [{ path, message: 'is required' }];
  return [{ path, message: issue.message }];
}

// Aliases a document may resolve: enough for anchors reused by hand, far too few for an exponential alias bomb.
const MAX_ALIAS_COUNT = 100;

/** Parses YAML text and validates it; never throws for bad input (an alias bomb, a parser failure included). */
export function parseAndValidate<S extends z.ZodType>(text: string, schema: S): Validated<z.output<S>> {
  try {
    return parseAndValidateOrThrow(text, schema);
  } catch (error) {
    // The yaml library throws (rather than reports) on excessive aliases, and any parser failure is the file's.
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, problems: [{ path: '', message: `invalid YAML: ${message.split('\n')[0] ?? ''}` }] };
  }
}

function parseAndValidateOrThrow<S extends z.ZodType>(text: string, schema: S): Validated<z.output<S>> {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (document.errors.length > 0) {
    return {
      ok: false,
      problems: document.errors.map((error) => ({
        path: '',
        message: `invalid YAML: ${error.message.split('\n')[0] ?? ''}`,
        ...position(error.pos[0]),
      })),
    };
  }
  const data: unknown = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  const result = schema.safeParse(data);
  if (result.success) return { ok: true, value: result.data };
  const problems = result.error.issues
    .flatMap((issue) => describeIssue(issue, data))
    .map(({ path, message }) => {
      // The node at the path, or the nearest parent that exists (a missing field points at its parent).
      let node: unknown;
      for (let length = path.length; length >= 0 && !isNode(node); length--)
        node = document.getIn(path.slice(0, length), true);
      const offset = isNode(node) ? node.range?.[0] : undefined;
      return { path: formatPath(path), message, ...position(offset) };
    });
  return { ok: false, problems };
}
