// One heap region walked, chunk by chunk, each chunk with its place: the
// allocator decode's placement (lib/allocator/places.ts) of one snapshot,
// with the chunk's flag bits and heapscope's own allocation beside it.
import type { Allocation } from '../allocation';
import type { HeapInfo } from '../allocator/decode';
import type { RegionWalk } from '../allocator/heap-walks';
import { markOf, PLACE_KINDS, placeColumns } from '../allocator/places';
import type { PlacedChunk, PlaceKind, RegionPlaceColumns, RegionPlaces } from '../allocator/places';
import type { BlockTotal } from '../malloc-info';
import { bigintOf } from '../exact';
import { zeroedArray } from '../fresh-memory';
import { defineOwn, lazyFields, own } from '../validate';
import { A_BIT, chunkAtOrBefore, chunkSize, Offsets, P_BIT } from './chunk';

/** Every place a chunk can be in, in the order views list them. */
export const PLACES: readonly PlaceKind[] = PLACE_KINDS;

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
 * heapscope's live allocations of this thread, by the address of their
 * chunks (numbers: user addresses are below 2^47). None in another process.
 */
export interface OwnBlocks {
  /** How many handles are live. */
  count: number;
  /** The live allocation whose chunk starts at `chunk`. */
  at(chunk: number): Allocation | undefined;
  /** The chunks of the live allocations whose chunks start in [lo, hi), ascending. */
  within(lo: number, hi: number): Float64Array;
}

/**
 * One region's chunks with their places, with heapscope's live allocations
 * among them (`ours`). The totals are counted from the columns; the
 * HeapChunk objects are made when `chunks` is first read (the top's at
 * once), each with the allocation that was live when the walk was made.
 */
export function regionWalk(walk: RegionWalk, places: RegionPlaces, ours: OwnBlocks | undefined, reason?: string): HeapRegionWalk {
  const columns = placeColumns(places);
  const { count, offsets } = walk.walk.table;
  const start = Number(walk.start);
  const totals = emptyTotals();
  const [counts, sizes] = placeSums(columns.places, offsets, count);
  PLACES.forEach((p, code) => { totals.places[p] = { count: counts[code], size: sizes[code] }; });
  const owned = ours === undefined || ours.count === 0 || count === 0 ? undefined : ownedChunks(ours, start, offsets, count, totals.ours);
  totals.chunks = count;
  // The chunks tile the region: their bytes run from the first one's start to the last one's end.
  totals.bytes = count === 0 ? 0 : offsets[count] - offsets[0];
  const chunkAt = (i: number): HeapChunk => heapChunk(columns, i, owned?.(i));
  const topIndex = walk.walk.top;
  const top = topIndex >= 0 ? chunkAt(topIndex) : undefined;
  const why = reason ?? own(walk, 'reason');
  const ended = walk.walk.ending === 'top' || (walk.walk.ending === 'fencepost' && walk.kind === 'arena-heap');
  const region = {
    arena: walk.arena, kind: walk.kind, start: walk.start, end: walk.end, ...(own(walk, 'heapInfo') === undefined ? {} : { heapInfo: walk.heapInfo }),
    firstChunk: walk.start + BigInt(count > 0 ? offsets[0] : 0),
  } as HeapRegionWalk;
  lazyFields(region, ['chunks'], () => ({ chunks: Array.from({ length: count }, (_, i) => (i === topIndex ? top! : chunkAt(i))) }));
  defineOwn(region, 'complete', why === undefined && ended);
  if (why !== undefined) defineOwn(region, 'reason', why);
  if (top !== undefined) defineOwn(region, 'top', top);
  defineOwn(region, 'totals', totals);
  return region;
}

/**
 * With a live handle for fewer than one chunk in FEW_HANDLES, the walk
 * looks for each handle's chunk among the offsets rather than asking the
 * live table about every chunk. Over the bench's heap made in C (1.03
 * million chunks), walks took 124-130 ms (medians) with 1,000 handles live
 * and every chunk asked, 87-96 ms with each handle looked for, 89-90 with
 * no handle. With 240,000 handles among 1.24 million chunks the two ways
 * took about the same (178-191 ms against 185-196); with 937,500 among
 * 1.03 million, looking for each took 558-585 ms against 308-322.
 */
const FEW_HANDLES = 4;

/**
 * Which of a region's chunks are heapscope's live allocations, by chunk
 * index; their count and bytes are added to `total`. With few handles, each
 * live block in the region is found among the offsets, in address order,
 * galloping from the last one found; with many, every chunk is asked.
 */
function ownedChunks(ours: OwnBlocks, start: number, offsets: Offsets, count: number, total: BlockTotal): ((i: number) => Allocation | undefined) | undefined {
  if (ours.count * FEW_HANDLES < count) {
    const chunks = ours.within(start + offsets[0], start + offsets[count]);
    // The indices of the chunks found, ascending, and their allocations.
    const indices = zeroedArray(Uint32Array, chunks.length);
    const allocations = new Array<Allocation>(chunks.length);
    let found = 0;
    let near = -1;
    for (let k = 0; k < chunks.length; k++) {
      const offset = chunks[k] - start;
      const i = chunkAtOrBefore(offsets, count, offset, near);
      near = i;
      if (offsets[i] !== offset) continue;
      indices[found] = i;
      allocations[found++] = ours.at(chunks[k])!;
      total.count++;
      total.size += offsets[i + 1] - offsets[i];
    }
    if (found === 0) return undefined;
    // Asked in chunk order when every chunk is made: each search gallops from the last.
    let last = -1;
    return (i) => {
      last = chunkAtOrBefore(indices, found, i, last);
      return last >= 0 && indices[last] === i ? allocations[last] : undefined;
    };
  }
  let owned: (Allocation | undefined)[] | undefined;
  for (let i = 0; i < count; i++) {
    const allocation = ours.at(start + offsets[i]);
    if (allocation !== undefined) {
      (owned ??= new Array<Allocation | undefined>(count))[i] = allocation;
      total.count++;
      total.size += offsets[i + 1] - offsets[i];
    }
  }
  return owned === undefined ? undefined : (i) => owned[i];
}

/**
 * Chunks and bytes by place code, in typed arrays: over a million chunks
 * this loop took 6.2 ms a walk (--cpu-prof self time), where one that added
 * into each place's own object, and asked the live handles after every
 * chunk, took 10.4.
 */
function placeSums(codes: Uint8Array, offsets: Offsets, count: number): [Float64Array, Float64Array] {
  const counts = new Float64Array(PLACES.length);
  const sizes = new Float64Array(PLACES.length);
  for (let i = 0; i < count; i++) {
    const code = codes[i];
    counts[code]++;
    sizes[code] += offsets[i + 1] - offsets[i];
  }
  return [counts, sizes];
}

/** Chunk `i` of a region's columns with its flag bits and heapscope's allocation (literals and spreads: no setter on Object.prototype is met). */
function heapChunk(columns: RegionPlaceColumns, i: number, allocation: Allocation | undefined): HeapChunk {
  const { table } = columns.walk.walk;
  const bits = table.bits[i];
  const address = bigintOf(Number(columns.walk.start) + table.offsets[i]);
  const size = chunkSize(table, i);
  const place = PLACE_KINDS[columns.places[i]];
  const prevInUse = (bits & P_BIT) !== 0;
  const nonMainArena = (bits & A_BIT) !== 0;
  const mark = markOf(columns, i);
  if (mark === undefined && allocation === undefined) return { address, size, place, prevInUse, nonMainArena };
  return { address, size, place, ...mark, prevInUse, nonMainArena, ...(allocation === undefined ? {} : { allocation }) };
}
