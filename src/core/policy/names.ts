// Names in policies and requests: exact names or `*` patterns, the reserved system: prefix, and how an
// untrusted name is quoted in a message.

/** Kubernetes reserves system: users and groups for itself; none is ever approved. */
export const SYSTEM_PREFIX = 'system:';

export function isSystemName(name: string): boolean {
  return name.startsWith(SYSTEM_PREFIX);
}

/**
 * True when `value` matches `pattern`, where each `*` matches any run of characters (none included) and
 * everything else matches itself. Greedy with one backtrack point, so the cost is bounded by
 * pattern length x value length whatever the input (no regular expression is built from configuration).
 */
export function matchesPattern(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    if (pattern[p] === '*') {
      star = p++;
      resume = v;
    } else if (p < pattern.length && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (star >= 0) {
      p = star + 1;
      v = ++resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

export function matchesAny(patterns: readonly string[], value: string): boolean {
  return patterns.some((pattern) => matchesPattern(pattern, value));
}

const QUOTE_LIMIT = 80;

/** An untrusted name as it may appear in a condition, an event or a log line: JSON-quoted and bounded. */
export function quote(value: string): string {
  const shown = value.length > QUOTE_LIMIT ? `${value.slice(0, QUOTE_LIMIT)}…` : value;
  return JSON.stringify(shown);
}
