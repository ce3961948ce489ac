// The plugin's reading of its ClusterProfile extension, without zod: importing zod costs the plugin about 70 ms
// of its start (measured: bench/credential-plugin.ts), and it runs on every credential refresh of every
// consumer. It accepts exactly what extension.ts's execExtensionSchema accepts (the unit test compares the two
// on a table of values), so the contract has one definition and this is its fast reader.
import type { ExecExtension } from './extension.ts';

type Mapping = Record<string, unknown>;
const isMapping = (value: unknown): value is Mapping =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isName = (value: unknown): value is string =>
  typeof value === 'string' && value.length >= 1 && value.length <= 253;
const onlyKeys = (value: Mapping, keys: readonly string[]) => Object.keys(value).every((key) => keys.includes(key));

/** The extension's value, or undefined when it is not one the schema accepts. */
export function parseExecExtension(value: unknown): ExecExtension | undefined {
  if (!isMapping(value)) return undefined;
  if (value.target !== undefined && !isName(value.target)) return undefined;
  const target = value.target === undefined ? {} : { target: value.target };
  if (onlyKeys(value, ['directory', 'target']) && typeof value.directory === 'string')
    return value.directory.startsWith('/') ? { directory: value.directory, ...target } : undefined;
  const secret = value.secret;
  if (
    onlyKeys(value, ['secret', 'target']) &&
    isMapping(secret) &&
    onlyKeys(secret, ['namespace', 'name']) &&
    isName(secret.namespace) &&
    isName(secret.name)
  )
    return { secret: { namespace: secret.namespace, name: secret.name }, ...target };
  return undefined;
}
