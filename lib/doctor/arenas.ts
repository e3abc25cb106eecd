// Each arena in figures (pure): system bytes, in use and free as mallinfo2
// counts them, free bytes by list kind, tcache bytes, the largest binned
// chunk, free ÷ system, resident bytes and what a trim gives back.
// `tcacheBytes`: per arena, the tcache chunks in its memory (cachedBytes).
import type { Arena } from '../allocator/arenas';
import { binBytes, binColumns } from '../allocator/bin-chunks';
import type { ArenaBins, Bin } from '../allocator/bins';
import type { ArenaTotals } from '../allocator/totals';
import type { MemoryRegion } from '../maps';
import type { ArenaDiagnosis, RssRow, TrimRange } from './types';

const bytesOf = (bins: readonly Bin[]) => bins.reduce((n, b) => n + binBytes(b), 0);

/** The largest chunk the lists hold (0 when none), from their columns. */
function largestOf(lists: readonly Bin[]): number {
  let largest = 0;
  for (const list of lists) {
    const chunks = binColumns(list);
    for (let i = 0; i < chunks.length; i++) largest = Math.max(largest, chunks.size(i));
  }
  return largest;
}

/** Resident bytes of the arena's memory: [heap], or its heaps as the resident-memory table counts them. */
function residentOf(a: Arena, regions: readonly MemoryRegion[], rss: readonly RssRow[]): number {
  if (a.kind === 'thread') return rss.find((r) => r.kind === 'arena-heaps' && r.arena === a.address)?.rss ?? 0;
  return regions.filter((r) => r.kind === 'heap').reduce((n, r) => n + (r.rss ?? 0), 0);
}

/**
 * A non-contiguous main_arena's memory outside [heap] (ArenaDiagnosis.outsideHeap), `foreign` the bytes of [heap]
 * it never took (another caller's sbrk, as far as the walk tells it).
 */
function outsideHeap(a: Arena, systemMem: number, regions: readonly MemoryRegion[], foreign: number): { bytes: number; top?: bigint } {
  const heaps = regions.filter((r) => r.kind === 'heap');
  // [heap] may hold more than main_arena's (its first chunk's alignment, its map line's last page): so "at least".
  const bytes = Math.max(0, systemMem - (heaps.reduce((n, r) => n + r.size, 0) - foreign));
  const inHeap = heaps.some((r) => r.start <= a.top.address && a.top.address < r.end);
  return { bytes, ...(inHeap ? {} : { top: a.top.address }) };
}

export function diagnoseArenas(
  arenas: readonly Arena[], bins: readonly ArenaBins[], totals: readonly ArenaTotals[], tcacheBytes: ReadonlyMap<bigint, number>,
  regions: readonly MemoryRegion[], rss: readonly RssRow[], trim: readonly TrimRange[], foreign: ArenaDiagnosis['foreignSbrk'],
): ArenaDiagnosis[] {
  return arenas.map((a): ArenaDiagnosis => {
    const b = bins.find((x) => x.arena === a.address);
    const t = totals.find((x) => x.arena === a.address);
    const lists = b === undefined ? [] : [...b.fastbins, ...b.unsorted, ...b.smallbins, ...b.largebins];
    const tcache = tcacheBytes.get(a.address) ?? 0;
    const systemMem = t?.systemMem ?? Number(a.systemMem);
    const free = t?.avail ?? 0;
    const released = trim.filter((r) => r.arena === a.address);
    const outside = a.kind === 'main' && a.noncontiguous ? { outsideHeap: outsideHeap(a, systemMem, regions, foreign === undefined ? 0 : foreign.below + foreign.past) } : {};
    return {
      arena: a.address,
      kind: a.kind,
      heaps: a.heaps.length,
      systemMem,
      inUse: systemMem - free,
      free,
      top: t?.top ?? 0,
      bins: {
        fast: b === undefined ? 0 : bytesOf(b.fastbins),
        unsorted: b === undefined ? 0 : bytesOf(b.unsorted),
        small: b === undefined ? 0 : bytesOf(b.smallbins),
        large: b === undefined ? 0 : bytesOf(b.largebins),
      },
      freeChunks: lists.reduce((n, l) => n + l.count, 0),
      tcache,
      largestFree: largestOf(lists),
      fragmentation: systemMem === 0 ? 0 : free / systemMem,
      rss: residentOf(a, regions, rss),
      trim: {
        bytes: released.reduce((n, r) => n + Number(r.end - r.start), 0),
        resident: released.reduce((n, r) => n + r.resident, 0),
      },
      ...outside,
      ...(a.kind === 'main' && foreign !== undefined ? { foreignSbrk: foreign } : {}),
    };
  });
}
