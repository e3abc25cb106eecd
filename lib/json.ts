// JSON for results: bigints become "0x…" strings.

export function toJSON(value: unknown, indent = 2): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v), indent);
}
