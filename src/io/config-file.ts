// Reading a configuration file and validating it against its schema: one ConfigError listing every problem
// (an unreadable file included) with field paths and lines.
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, parseAndValidate } from '../core/config/validate.ts';

export interface ConfigFile<T> {
  /** The file as read, to tell a change from a re-read of the same content. */
  readonly text: string;
  readonly value: T;
}

export function readConfigFile<S extends z.ZodType>(path: string, schema: S): ConfigFile<z.output<S>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, [{ path: '', message: `cannot be read: ${(error as Error).message}` }], {
      cause: error,
    });
  }
  const validated = parseAndValidate(text, schema);
  if (!validated.ok) throw new ConfigError(path, validated.problems);
  return { text, value: validated.value };
}
