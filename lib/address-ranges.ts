// Arithmetic on address ranges ([start, end), bigints): merging them and
// taking some out of others. The copy planner, the doctor and the
// experiments' map diffs all do it.

export interface Span {
  start: bigint;
  /** Exclusive. */
  end: bigint;
}

/** `ranges` and `more` with overlapping ones merged (a region's `size` follows its end; ranges that only touch stay apart, as map lines do). */
export function mergedRanges<T extends Span & { size?: number }>(ranges: readonly T[], more: readonly T[] = []): T[] {
  const out: T[] = [];
  for (const r of [...ranges, ...more].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))) {
    const last = out[out.length - 1];
    if (last !== undefined && r.start < last.end) {
      if (r.end > last.end) out[out.length - 1] = { ...last, end: r.end, ...(last.size === undefined ? {} : { size: Number(r.end - last.start) }) };
    } else out.push(r);
  }
  return out;
}

/** Where `a` and `b` overlap, or undefined where they do not. */
export function intersection(a: Span, b: Span): Span | undefined {
  const start = a.start > b.start ? a.start : b.start;
  const end = a.end < b.end ? a.end : b.end;
  return start < end ? { start, end } : undefined;
}

/** The parts of `from` (sorted) that no range of `minus` (in any order, overlapping or not) covers, in order. */
export function subtractRanges(from: readonly Span[], minus: readonly Span[]): Span[] {
  const cut = mergedRanges(minus.map((m) => ({ start: m.start, end: m.end })));
  const out: Span[] = [];
  for (const r of from) {
    let start = r.start;
    for (const m of cut) {
      if (m.end <= start || m.start >= r.end) continue;
      if (m.start > start) out.push({ start, end: m.start });
      start = m.end;
      if (start >= r.end) break;
    }
    if (start < r.end) out.push({ start, end: r.end });
  }
  return out;
}
