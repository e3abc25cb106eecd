// What probes say about the mmap threshold: a bracket of chunk sizes it lies
// in, and how two brackets and a size compare.

/** What the probes say: lo < threshold ≤ hi, both chunk sizes; a side is missing when no probe decided it. */
export interface Bracket {
  lo?: number;
  hi?: number;
}

/** Whether any probe decided a side. */
export function located(b: Bracket): boolean {
  return b.lo !== undefined || b.hi !== undefined;
}

/** Whether a located bracket holds `value`; an unlocated one holds nothing. */
export function holds(b: Bracket, value: number): boolean {
  if (!located(b)) return false;
  return (b.lo === undefined || b.lo < value) && (b.hi === undefined || value <= b.hi);
}

/** Whether two brackets overlap: one threshold could lie in both. */
export function consistent(a: Bracket, b: Bracket): boolean {
  const lo = Math.max(a.lo ?? 0, b.lo ?? 0);
  const hi = Math.min(a.hi ?? Infinity, b.hi ?? Infinity);
  return lo < hi;
}

export function bracketText(b: Bracket): string {
  if (b.lo !== undefined && b.hi !== undefined) return `(${b.lo}, ${b.hi}]`;
  if (b.hi !== undefined) return `at most ${b.hi}`;
  if (b.lo !== undefined) return `above ${b.lo}`;
  return 'unknown (no probe reached the kernel)';
}
