// Durations as operators write them: `30s`, `1.5m`, `24h`, `500ms` (a bare number is seconds).
/** Consul's `wait` and every duration flag: a number with ms, s, m or h (a bare number is seconds). */
export function parseWait(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h"];
  return Number(m[1]) * unit;
}
