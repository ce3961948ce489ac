// Applying RFC 6902 "add" operations (all the injector emits) to a plain object, for checking patches in
// unit tests without an apiserver. Throws on a path that does not exist, as the apiserver would.
type Json = Record<string, unknown> | unknown[];

const unescape = (segment: string) => segment.replaceAll('~1', '/').replaceAll('~0', '~');

export function applyPatch<T>(document: T, operations: readonly { op: string; path: string; value: unknown }[]): T {
  const result = structuredClone(document) as Json;
  for (const operation of operations) {
    if (operation.op !== 'add') throw new Error(`unsupported op ${operation.op}`);
    const segments = operation.path.split('/').slice(1).map(unescape);
    const last = segments.pop();
    if (last === undefined) throw new Error('empty path');
    let parent: unknown = result;
    for (const segment of segments) {
      const next: unknown = Array.isArray(parent)
        ? parent[Number(segment)]
        : (parent as Record<string, unknown> | undefined)?.[segment];
      if (typeof next !== 'object' || next === null)
        throw new Error(`path ${operation.path} does not exist at "${segment}"`);
      parent = next;
    }
    if (Array.isArray(parent)) {
      const index = last === '-' ? parent.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.length)
        throw new Error(`bad array index in ${operation.path}`);
      parent.splice(index, 0, structuredClone(operation.value));
    } else if (typeof parent === 'object' && parent !== null) {
      (parent as Record<string, unknown>)[last] = structuredClone(operation.value);
    } else throw new Error(`cannot add at ${operation.path}`);
  }
  return result as T;
}
