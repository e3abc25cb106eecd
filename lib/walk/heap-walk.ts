// What a walk of one heap region says, chunk by chunk, and its totals.
import { Allocation, liveAllocations, pointerOf } from '../allocation';
import { bigintOf } from '../exact';
import { BlockTotal } from '../malloc-info';
import { A_BIT, FREE_BIT, P_BIT, SnapshotWalk } from './chunk';
import { HeapInfo } from './thread-arenas';

/**
 * - `in-use`: the next chunk's P bit is set. Chunks cached in a fastbin
 *   look like this too (glibc keeps P set for them).
 * - `tcache`: looks in use, and the calling thread's tcache lists it.
 * - `free`: the next chunk's P bit is clear: the chunk is in the unsorted,
 *   a small or a large bin.
 * - `top`: the arena's top chunk, the end of the heap.
 * - `fencepost`: the 16-byte marker that ends an older thread-arena heap.
 */
export type ChunkState = 'in-use' | 'free' | 'tcache' | 'top' | 'fencepost';

export interface HeapChunk {
  address: bigint;
  /** Bytes, flags masked off. */
  size: number;
  /** The chunk's own P bit: the chunk before it is in use (or cached). */
  prevInUse: boolean;
  /** The A bit (NON_MAIN_ARENA). */
  nonMainArena: boolean;
  state: ChunkState;
  /** The live heapscope allocation of this thread whose chunk this is. */
  allocation?: Allocation;
  /** The calling thread's tcache_perthread_struct. */
  tcacheStruct: boolean;
}

export interface WalkTotals {
  chunks: number;
  /** Chunks that look in use and are not in tcache (fastbin chunks included), and fenceposts. */
  inUse: BlockTotal;
  free: BlockTotal;
  tcache: BlockTotal;
  /** The top chunk's size (0 when the walk did not reach it). */
  top: number;
}

/** One heap region walked: main_arena's [heap], or one thread-arena heap. */
export interface HeapRegionWalk {
  /** `main`, or the malloc_state address (heap_info.ar_ptr) of a thread arena. */
  arena: 'main' | bigint;
  kind: 'heap' | 'arena-heap';
  /** The region's first byte. */
  start: bigint;
  /** Where its chunks end: the program break, or start + heap_info.size. */
  end: bigint;
  /** Thread-arena heaps: their heap_info. */
  heapInfo?: HeapInfo;
  /** Where the walk began. */
  firstChunk: bigint;
  chunks: HeapChunk[];
  /** The chunks tiled the region exactly up to the top chunk (or an older heap's fencepost). */
  complete: boolean;
  /** Why the walk stopped early, when it did; `chunks` holds what was read before. */
  reason?: string;
  top?: HeapChunk;
  totals: WalkTotals;
}

/** Turns a walk's table into chunk objects, marking tcache entries, the tcache struct and heapscope's own allocations. */
export function materialise(
  walk: SnapshotWalk,
  marks: { tcacheChunks: ReadonlySet<bigint>; tcacheStruct?: bigint },
): { chunks: HeapChunk[]; totals: WalkTotals; top?: HeapChunk } {
  const { table, base } = walk;
  // Offsets, not bigints, as keys: one Map lookup of a number per chunk.
  const ours = new Map<number, Allocation>();
  const span = table.count === 0 ? 0 : table.offsets[table.count - 1] + table.sizes[table.count - 1];
  // Addresses as numbers where exact (user space is below 2^47); bigints only for the chunks made.
  const baseNumber = Number(base);
  const exact = base + BigInt(span) < 1n << 53n;
  for (const allocation of liveAllocations()) {
    const offset = exact ? pointerOf(allocation) - 16 - baseNumber : Number(allocation.address - 16n - base);
    if (offset >= 0 && offset < span) ours.set(offset, allocation);
  }
  const tcacheOffsets = new Set<number>();
  for (const address of marks.tcacheChunks) tcacheOffsets.add(Number(address - base));
  const structOffset = marks.tcacheStruct === undefined ? -1 : Number(marks.tcacheStruct - base);

  const chunks: HeapChunk[] = new Array(table.count);
  const totals: WalkTotals = { chunks: table.count, inUse: { count: 0, size: 0 }, free: { count: 0, size: 0 }, tcache: { count: 0, size: 0 }, top: 0 };
  for (let i = 0; i < table.count; i++) {
    const offset = table.offsets[i];
    const size = table.sizes[i];
    const bits = table.bits[i];
    let state: ChunkState;
    if (i === walk.top) state = 'top';
    else if ((bits & FREE_BIT) !== 0) state = 'free';
    else if (tcacheOffsets.has(offset)) state = 'tcache';
    else if (walk.ending === 'fencepost' && i >= table.count - 2 && size === 16) state = 'fencepost';
    else state = 'in-use';
    const chunk: HeapChunk = {
      address: exact ? bigintOf(baseNumber + offset) : base + BigInt(offset), size, prevInUse: (bits & P_BIT) !== 0, nonMainArena: (bits & A_BIT) !== 0,
      state, tcacheStruct: offset === structOffset,
    };
    const allocation = ours.get(offset);
    if (allocation !== undefined) chunk.allocation = allocation;
    chunks[i] = chunk;
    if (state === 'top') totals.top = size;
    else {
      const bucket = state === 'free' ? totals.free : state === 'tcache' ? totals.tcache : totals.inUse;
      bucket.count++;
      bucket.size += size;
    }
  }
  return { chunks, totals, ...(walk.top >= 0 ? { top: chunks[walk.top] } : {}) };
}
