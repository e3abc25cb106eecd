// One heap region walked, chunk by chunk, each chunk with its place: the
// allocator decode's placement (lib/allocator/places.ts) of one snapshot,
// with the chunk's flag bits and heapscope's own allocation beside it.
import type { Allocation } from '../allocation';
import type { HeapInfo } from '../allocator/decode';
import type { RegionWalk } from '../allocator/heap-walks';
import type { PlacedChunk, PlaceKind, RegionPlaces } from '../allocator/places';
import type { BlockTotal } from '../malloc-info';
import { A_BIT, P_BIT } from './chunk';

/** Every place a chunk can be in, in the order views list them. */
export const PLACES: readonly PlaceKind[] = [
  'in-use', 'tcache-struct', 'tcache', 'fastbin', 'unsorted', 'smallbin', 'largebin', 'top', 'fencepost', 'unlisted',
];

/**
 * A chunk and where it is (`place`, with `bin`, `tcache`, `owner` and
 * `lastRemainder` where they apply: see PlacedChunk). A fastbin chunk is
 * `fastbin`, never `in-use`, though glibc leaves the next chunk's P bit set
 * for it as for a chunk in use.
 */
export interface HeapChunk extends PlacedChunk {
  /** The chunk's own P bit: the chunk before it is in use (or in a tcache or fastbin). */
  prevInUse: boolean;
  /** The A bit (NON_MAIN_ARENA). */
  nonMainArena: boolean;
  /** The live heapscope allocation of this thread whose chunk this is. */
  allocation?: Allocation;
}

export interface WalkTotals {
  chunks: number;
  /** Bytes the chunks cover. */
  bytes: number;
  /** Chunks and bytes in each place (every place is present, zero when empty). */
  places: Record<PlaceKind, BlockTotal>;
  /** heapscope's own live allocations among the in-use chunks. */
  ours: BlockTotal;
}

/** One heap region walked: main_arena's [heap], a non-contiguous main_arena's top region, or one thread-arena heap. */
export interface HeapRegionWalk {
  /** The arena's malloc_state: main_arena's address for `heap` and `top-region`. */
  arena: bigint;
  /**
   * `heap`: main_arena's [heap]. `top-region`: a non-contiguous
   * main_arena's top chunk, in memory glibc took with mmap.
   * `arena-heap`: a thread arena's heap.
   */
  kind: RegionWalk['kind'];
  /** The region's first byte. */
  start: bigint;
  /** Where its chunks end: the program break, the top's end, or start + heap_info.size. */
  end: bigint;
  /** Thread-arena heaps: their heap_info (`prev` 0 for an arena's first heap, which holds its malloc_state). */
  heapInfo?: HeapInfo;
  /** Where the walk began. */
  firstChunk: bigint;
  chunks: HeapChunk[];
  /** The chunks tiled the region exactly up to the top chunk (or an older thread heap's fencepost). */
  complete: boolean;
  /** Why the walk is not complete, when it is not; `chunks` holds what was read before. */
  reason?: string;
  top?: HeapChunk;
  totals: WalkTotals;
}

/** Totals with every place at zero. */
export function emptyTotals(): WalkTotals {
  const places = Object.fromEntries(PLACES.map((p) => [p, { count: 0, size: 0 }])) as Record<PlaceKind, BlockTotal>;
  return { chunks: 0, bytes: 0, places, ours: { count: 0, size: 0 } };
}

/** Adds `t` into `into`. */
export function addTotals(into: WalkTotals, t: WalkTotals): void {
  into.chunks += t.chunks;
  into.bytes += t.bytes;
  for (const p of PLACES) {
    into.places[p].count += t.places[p].count;
    into.places[p].size += t.places[p].size;
  }
  into.ours.count += t.ours.count;
  into.ours.size += t.ours.size;
}

/**
 * One region's chunks with their places; `ours` gives heapscope's live
 * allocation whose chunk starts at an address (none in another process).
 */
export function regionWalk(walk: RegionWalk, places: RegionPlaces, ours: (chunk: number) => Allocation | undefined, reason?: string): HeapRegionWalk {
  const { count, offsets, bits } = walk.walk.table;
  const start = Number(walk.start);
  const totals = emptyTotals();
  const chunks: HeapChunk[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const placed = places.chunks[i];
    const prevInUse = (bits[i] & P_BIT) !== 0;
    const nonMainArena = (bits[i] & A_BIT) !== 0;
    // Most chunks have no bin, tcache or last_remainder mark: one literal of
    // one shape, in the spread's field order, instead of a spread each.
    const chunk: HeapChunk = placed.bin === undefined && placed.tcache === undefined && placed.lastRemainder === undefined
      ? { address: placed.address, size: placed.size, place: placed.place, prevInUse, nonMainArena }
      : { ...placed, prevInUse, nonMainArena };
    const allocation = ours(start + offsets[i]);
    if (allocation !== undefined) {
      chunk.allocation = allocation;
      totals.ours.count++;
      totals.ours.size += placed.size;
    }
    chunks[i] = chunk;
    totals.chunks++;
    totals.bytes += placed.size;
    totals.places[placed.place].count++;
    totals.places[placed.place].size += placed.size;
  }
  const why = reason ?? walk.reason;
  const ended = walk.walk.ending === 'top' || (walk.walk.ending === 'fencepost' && walk.kind === 'arena-heap');
  return {
    arena: walk.arena, kind: walk.kind, start: walk.start, end: walk.end, ...(walk.heapInfo === undefined ? {} : { heapInfo: walk.heapInfo }),
    firstChunk: walk.start + BigInt(count > 0 ? offsets[0] : 0), chunks,
    complete: why === undefined && ended, ...(why === undefined ? {} : { reason: why }),
    ...(walk.walk.top >= 0 ? { top: chunks[walk.walk.top] } : {}), totals,
  };
}
