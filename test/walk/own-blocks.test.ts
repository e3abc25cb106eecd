// A walk marks the chunks of heapscope's live handles two ways: with few
// handles it looks for each handle's chunk among the region's offsets,
// with many it asks the live table about every chunk (heap-walk.ts,
// ownedChunks). Either way, every chunk carries exactly the handle whose
// block it holds.
import { describe, expect, it } from 'vitest';
import { inQuietChild } from '../helpers/quiet-child';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// The walks run in a quiet child: no live heap of this process is read.
heapRoomNotNeeded();

interface Seen { handles: number; chunks: number; marked: number; wrong: number; missed: number; ours: { count: number; size: number }; size: number }

/** Keeps `count` blocks of the sizes given in turn (a plan's `keep`), walks main_arena, and compares each chunk with the handles. */
function walkWith(count: number, sizes: number[]): Seen {
  return inQuietChild<Seen>(`
    const sizes = ${JSON.stringify(sizes)};
    const kept = [...h.runPlan(Array.from({ length: ${count} }, (_, i) => ({ op: 'malloc', size: sizes[i % sizes.length] })), { keep: true }).kept.values()];
    const w = h.walkHeap({ arena: 'main' });
    const byChunk = new Map(kept.map((a) => [a.address - 16n, a]));
    const seen = { handles: 0, chunks: w.main.chunks.length, marked: 0, wrong: 0, missed: 0, ours: w.totals.ours, size: 0 };
    for (const c of w.main.chunks) {
      const a = byChunk.get(c.address);
      if (a !== undefined) { seen.handles++; seen.size += c.size; }
      if (c.allocation !== undefined) seen.marked++;
      if (c.allocation !== a) { if (a === undefined) seen.wrong++; else seen.missed++; }
    }
    for (const a of kept) a.free();
    return seen;`);
}

describe("a walk's own allocations", () => {
  it('are found when a few handles are live among many chunks', () => {
    const seen = walkWith(7, [40, 200, 1500]);
    expect(seen.handles).toBe(7);
    // A handle for fewer than one chunk in four (FEW_HANDLES): each handle's chunk is looked for.
    expect(seen.chunks).toBeGreaterThan(4 * 7);
    expect({ marked: seen.marked, wrong: seen.wrong, missed: seen.missed }).toEqual({ marked: 7, wrong: 0, missed: 0 });
    expect(seen.ours).toEqual({ count: 7, size: seen.size });
  });

  it('are found when most chunks are live handles', () => {
    const seen = walkWith(40000, [24, 40, 24, 120]);
    expect(seen.handles).toBe(40000);
    // A handle for one chunk in four or more: every chunk is asked.
    expect(seen.chunks).toBeLessThanOrEqual(4 * 40000);
    expect({ marked: seen.marked, wrong: seen.wrong, missed: seen.missed }).toEqual({ marked: 40000, wrong: 0, missed: 0 });
    expect(seen.ours).toEqual({ count: 40000, size: seen.size });
  });
});
