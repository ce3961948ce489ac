// Durations as operators write them (Go's time.ParseDuration subset): 90s, 30m, 1h, 1h30m, 2h45m10s.
const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds; throws an Error naming the bad input. */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (text === '' || parts.map((part) => part[0]).join('') !== text) {
    throw new Error(`"${text}" is not a duration (examples: 90s, 30m, 1h, 1h30m)`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * (UNITS[unit ?? ''] ?? Number.NaN), 0);
}
