// The walk's own mallinfo2() in a quiet child (nothing but the body
// allocates): every field equals mallinfo2() of the same native call, with
// chunks in a fastbin, in the unsorted, small or large bins and in the tcache,
// and no fastbin chunk is counted as in use.
import { describe, expect, it } from 'vitest';
import { FREED_SHAPE, inQuietChild } from '../helpers/quiet-child';
import { HERE, PAST_FULL_TCACHE } from '../helpers/glibc-here';
import { liveMallocPar } from '../../lib/allocator/live-par';

const FIELDS = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'uordblks', 'fsmblks', 'fordblks', 'keepcost'];

describe("the walk's totals against mallinfo2()", () => {
  it('in a quiet process every field is equal, and each freed small block is in the tcache or a fastbin, never in use', () => {
    const seen = inQuietChild<{
      consistent: boolean; checks: { field: string; mallinfo: number; walk: number; difference: number; equal: boolean }[]; problems: string[];
      places: Record<string, number>; small: string[]; sizes: number; fastbinBytes: number; fsmblks: number; complete: boolean[];
    }>(`${FREED_SHAPE}
      const w = h.walkHeap({ before });
      const all = [w.main, ...w.threadHeaps].flatMap((r) => r.chunks);
      const at = new Map(all.map((c) => [c.address, c]));
      const smallChunks = small.map((i) => at.get(w.steps[i].address - 16n));
      return {
        consistent: w.consistent, checks: w.checks, problems: w.problems,
        places: Object.fromEntries(Object.entries(w.totals.places).map(([p, t]) => [p, t.count])),
        small: smallChunks.map((c) => c && c.place),
        // The sizes of those found: one merged into a free neighbour's chunk is none, and in no tcache.
        sizes: new Set(smallChunks.filter((c) => c).map((c) => c.size)).size,
        fastbinBytes: w.totals.places.fastbin.size, fsmblks: w.mallinfo.fsmblks,
        complete: [w.main, ...w.threadHeaps].map((r) => r.complete),
      };`);
    expect(seen.consistent).toBe(true);
    expect(seen.problems).toEqual([]);
    expect(seen.complete.every(Boolean)).toBe(true);
    expect(seen.checks.map((c) => c.field)).toEqual(FIELDS);
    for (const c of seen.checks) expect({ field: c.field, walk: c.walk, difference: c.difference, equal: c.equal }).toEqual({ field: c.field, walk: c.mallinfo, difference: 0, equal: true });
    // Not a vacuous equality: each size the small blocks came out at holds at most mp_.tcache_count of them in the tcache; the
    // rest are in a fastbin (from 2.43, which has none, in their small bin, or merged into a free neighbour's chunk: no chunk there).
    const held = Number(liveMallocPar().tcacheCount);
    expect(seen.small.every((p) => p === 'tcache' || p === PAST_FULL_TCACHE || (!HERE.fastbins && p === null))).toBe(true);
    // And at least one is not (from 2.43 a tcache bin holds 16, and the 40 blocks can come out at three sizes).
    expect(seen.small.filter((p) => p !== 'tcache').length).toBeGreaterThanOrEqual(Math.max(1, seen.small.length - held * seen.sizes));
    expect(seen.fastbinBytes).toBe(seen.fsmblks);
    expect(seen.places.unsorted + seen.places.smallbin + seen.places.largebin).toBeGreaterThanOrEqual(1);
    expect(seen.places.tcache).toBeGreaterThanOrEqual(held);
  });

  it("says which field differs and by how much when the walk's totals and mallinfo2() disagree", () => {
    // The checks are a pure comparison: an altered mallinfo2 shows as the fields it altered, with the difference.
    const seen = inQuietChild<{ field: string; difference: number; equal: boolean }[]>(`
      const { mallinfoChecks } = require(${JSON.stringify(require('node:path').join(__dirname, '..', '..', 'dist', 'walk', 'checks'))});
      const w = h.walkHeap();
      return mallinfoChecks(w.mallinfoTotals, { ...w.mallinfo, ordblks: w.mallinfo.ordblks + 2, keepcost: w.mallinfo.keepcost - 16 })
        .filter((c) => !c.equal).map(({ field, difference, equal }) => ({ field, difference, equal }));`);
    expect(seen).toEqual([{ field: 'ordblks', difference: 2, equal: false }, { field: 'keepcost', difference: -16, equal: false }]);
  });
});
