// A walk's chunk objects are made when `chunks` is first read, from columns
// filled when the walk was made: the totals, the top and each chunk's
// allocation are those of the snapshot, however late the objects are made.
import { describe, expect, it } from 'vitest';
import { inQuietChild } from '../helpers/quiet-child';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// The walks run in a quiet child: no live heap of this process is read.
heapRoomNotNeeded();

describe("a walk's chunks, made on first read", () => {
  it('are an own enumerable property, the same objects on every read, that agree with the totals counted without them', () => {
    const seen = inQuietChild<{
      before: { get: boolean; enumerable: boolean }; after: { get: boolean; value: boolean }; same: boolean; topIsChunk: boolean;
      recount: { chunks: number; bytes: number; places: Record<string, { count: number; size: number }>; ours: { count: number; size: number } };
      totals: unknown; keys: string[]; json: boolean;
    }>(`
      const kept = h.runPlan([40, 200, 40, 1500, 40].map((size) => ({ op: 'malloc', size })), { keep: true }).kept;
      const w = h.walkHeap({ arena: 'main' });
      const d = Object.getOwnPropertyDescriptor(w.main, 'chunks');
      const before = { get: typeof d.get === 'function', enumerable: d.enumerable };
      const chunks = w.main.chunks;
      const d2 = Object.getOwnPropertyDescriptor(w.main, 'chunks');
      const places = Object.fromEntries(Object.keys(w.main.totals.places).map((p) => [p, { count: 0, size: 0 }]));
      const ours = { count: 0, size: 0 };
      for (const c of chunks) {
        places[c.place].count++; places[c.place].size += c.size;
        if (c.allocation !== undefined) { ours.count++; ours.size += c.size; }
      }
      const result = {
        before, after: { get: d2.get !== undefined, value: d2.value === chunks }, same: w.main.chunks === chunks,
        topIsChunk: chunks.includes(w.main.top),
        recount: { chunks: chunks.length, bytes: chunks.reduce((n, c) => n + c.size, 0), places, ours },
        totals: w.main.totals, keys: Object.keys(w.main), json: JSON.stringify(w.main, (k, v) => (typeof v === 'bigint' ? String(v) : v)).includes('"chunks":[{'),
      };
      for (const a of kept.values()) a.free();
      return result;`);
    expect(seen.before).toEqual({ get: true, enumerable: true });
    expect(seen.after).toEqual({ get: false, value: true });
    expect(seen.same).toBe(true);
    expect(seen.topIsChunk).toBe(true);
    expect(seen.recount).toEqual(seen.totals);
    expect(seen.recount.ours.count).toBeGreaterThanOrEqual(5);
    expect(seen.keys).toEqual(['arena', 'kind', 'start', 'end', 'firstChunk', 'chunks', 'complete', 'top', 'totals']);
    expect(seen.json).toBe(true);
  });

  it("carry the allocation that was live when the walk was made, not one made at the same address since", () => {
    const seen = inQuietChild<{ chunkOfA: string | null; first: boolean; freed: boolean; sameAddress: boolean; second: boolean }>(`
      const a = h.malloc(200);
      const w = h.walkHeap({ arena: 'main' });
      // Another block at a's address, whatever a collection frees or takes meanwhile: glibc's realloc to the
      // size a already has keeps the chunk where it is, and heapscope gives the block a new handle.
      const b = h.realloc(a, 200);
      const chunk = w.main.chunks.find((c) => c.address === a.address - 16n);
      const result = {
        chunkOfA: chunk === undefined ? null : chunk.place, first: chunk !== undefined && chunk.allocation === a,
        freed: a.freed, sameAddress: b.address === a.address, second: chunk !== undefined && chunk.allocation === b,
      };
      b.free();
      return result;`);
    expect(seen.chunkOfA).toBe('in-use');
    expect(seen.first).toBe(true);
    expect(seen.freed).toBe(true);
    // The same address: the test would pass vacuously otherwise.
    expect(seen.sameAddress).toBe(true);
    expect(seen.second).toBe(false);
  });
});
