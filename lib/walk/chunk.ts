// The chunk walk itself: a pure pass over a copy of heap memory. It trusts
// nothing it reads: every size is checked before it is used to move on, so
// a torn or corrupt snapshot ends the walk with a reason, never a loop.
import { rangeError, typeError } from '../errors';
import { hex } from '../format';
import { describe, readOptions, toAddress, toBytes, toIndex } from '../validate';

/** glibc's MINSIZE and MALLOC_ALIGNMENT on x86_64. */
const MIN_CHUNK = 32;
const ALIGN = 16;
/**
 * A 16-byte fencepost chunk (CHUNK_HDR_SZ). A thread arena heap that is not
 * the arena's newest ends in one followed by a size-0 header. main_arena's
 * [heap] ends in two, right at the break, once brk() has failed and sysmalloc
 * has moved the top into memory from mmap (the arena turned non-contiguous).
 */
const FENCEPOST = 16;
const TWO_32 = 4294967296;
/** Sizes at or above 2^53 cannot be exact numbers; no region is that big. */
const SIZE_HIGH_LIMIT = 0x200000;

/** Bits of {@link ChunkTable.bits}: the size word's P, M and A flags, plus FREE_BIT. */
export const P_BIT = 1;
export const M_BIT = 2;
export const A_BIT = 4;
/** The next chunk's P bit is clear: the chunk sits in a bin (tcache and fastbin chunks keep P set). */
export const FREE_BIT = 8;

/** The chunks of one walk, column by column: no object per chunk. */
export interface ChunkTable {
  count: number;
  /** Offset of each chunk from the snapshot's first byte. */
  offsets: Float64Array;
  /** Size of each chunk, flags masked off. */
  sizes: Float64Array;
  /** The size word's low three bits (P_BIT, M_BIT, A_BIT) and FREE_BIT. */
  bits: Uint8Array;
}

export interface SnapshotWalkOptions {
  /** Offset of the first chunk in the snapshot (default 0). */
  start?: number;
  /** Offset where the region ends, exclusive (default: the snapshot's length). The top chunk must end exactly here. */
  end?: number;
  /** The arena's top chunk, when known (a thread arena's malloc_state.top): the walk must meet it. */
  top?: bigint;
  /** Accept the fencepost that ends an older thread arena heap instead of a top chunk. */
  fenceposts?: boolean;
  /** The chunks belong to main_arena: an A (NON_MAIN_ARENA) bit is an inconsistency. */
  mainArena?: boolean;
}

export interface SnapshotWalk {
  /** The address of the snapshot's first byte. */
  base: bigint;
  table: ChunkTable;
  /**
   * `top`: the walk tiled the region exactly up to a top chunk that ends at
   * `end`. `fencepost`: it reached an older thread heap's fencepost, or the
   * double fencepost that ends main_arena's [heap] when the arena is
   * non-contiguous (its top then lies elsewhere). `stopped`: an
   * inconsistency, described by `reason`; `table` holds the chunks read so far.
   */
  ending: 'top' | 'fencepost' | 'stopped';
  reason?: string;
  /** Index of the top chunk in `table`, or -1. */
  top: number;
  /** Offset just past the last chunk read. */
  reached: number;
}

/**
 * Walks the chunks in `snapshot` (a copy of memory whose first byte was at
 * `base`) from `options.start` to the top chunk. Pure: it looks at nothing
 * but its arguments, so it can be timed alone.
 */
export function walkSnapshot(snapshot: Uint8Array, base: bigint, options: SnapshotWalkOptions = {}): SnapshotWalk {
  toBytes(snapshot, 'snapshot');
  toAddress(base, 'base');
  const o = readOptions(options, 'options', ['start', 'end', 'top', 'fenceposts', 'mainArena']);
  const start = o.start === undefined ? 0 : toIndex(o.start, 'options.start');
  const end = o.end === undefined ? snapshot.length : toIndex(o.end, 'options.end');
  if (end > snapshot.length || start > end) {
    throw rangeError(`start ${start} and end ${end} must satisfy 0 <= start <= end <= ${snapshot.length}`);
  }
  const topAddress = o.top === undefined ? undefined : toAddress(o.top, 'options.top');
  for (const flag of ['fenceposts', 'mainArena'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw typeError(`options.${flag} must be a boolean, got ${describe(o[flag])}`);
  }
  // A Uint32Array view needs 4-byte alignment; a Buffer from a pool slice may lack it.
  const bytes = snapshot.byteOffset % 4 === 0 ? snapshot : new Uint8Array(snapshot);
  // (Not `>>> 2`: a 4 GiB snapshot's length does not fit in 32 bits.)
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 4));
  const topOffset = topAddress === undefined ? -1 : Number(topAddress - base);
  const fenceposts = o.fenceposts === true;
  const mainArena = o.mainArena === true;

  // Small columns that double as needed. Sized for every chunk the region
  // could hold (one per 32 bytes), a big heap's columns were tens of MiB of
  // fresh memory whose first touch cost 3-4x the loop itself (bench/run.mjs,
  // a million chunks); doubling copies less than that.
  let capacity = Math.max(16, Math.min(Math.ceil((end - start) / MIN_CHUNK) + 1, 1 << 16));
  let offsets = new Float64Array(capacity);
  let sizes = new Float64Array(capacity);
  let bits = new Uint8Array(capacity);
  let count = 0;
  let off = start;
  let reason: string | undefined;
  let ending: SnapshotWalk['ending'] = 'stopped';
  let top = -1;
  const push = (offset: number, size: number, flags: number): void => {
    if (count === capacity) {
      capacity *= 2;
      const o = new Float64Array(capacity); o.set(offsets); offsets = o;
      const s = new Float64Array(capacity); s.set(sizes); sizes = s;
      const b = new Uint8Array(capacity); b.set(bits); bits = b;
    }
    offsets[count] = offset;
    sizes[count] = size;
    bits[count] = flags;
    count++;
  };

  if ((Number(base % BigInt(ALIGN)) + start) % ALIGN !== 0) {
    reason = `the first chunk at ${hex(base + BigInt(start))} is not ${ALIGN}-byte aligned`;
  }
  while (reason === undefined) {
    if (off + 16 > end) {
      reason = `the chunk header at ${hex(base + BigInt(off))} runs past the end of the region (${hex(base + BigInt(end))})`;
      break;
    }
    const w = off >>> 2;
    const low = words[w + 2];
    const high = words[w + 3];
    const flags = low & 7;
    if (high >= SIZE_HIGH_LIMIT) {
      reason = `the chunk at ${hex(base + BigInt(off))} has an impossible size word ${hex((BigInt(high) << 32n) | BigInt(low))}`;
      break;
    }
    const size = high * TWO_32 + (low - flags);
    if (size === 0 && fenceposts && flags === P_BIT && count > 0) {
      ending = 'fencepost';
      break;
    }
    if (size === 0) {
      reason = `the chunk at ${hex(base + BigInt(off))} has size 0`;
      break;
    }
    if (size % ALIGN !== 0) {
      reason = `the chunk at ${hex(base + BigInt(off))} has size ${size}, not a multiple of ${ALIGN}`;
      break;
    }
    if (size < MIN_CHUNK && !((fenceposts || mainArena) && size === FENCEPOST)) {
      reason = `the chunk at ${hex(base + BigInt(off))} has size ${size}, below the ${MIN_CHUNK}-byte minimum`;
      break;
    }
    if ((flags & M_BIT) !== 0) {
      reason = `the chunk at ${hex(base + BigInt(off))} has the IS_MMAPPED bit, which no chunk inside an arena heap has`;
      break;
    }
    if (mainArena && (flags & A_BIT) !== 0) {
      reason = `the chunk at ${hex(base + BigInt(off))} has the NON_MAIN_ARENA bit inside main_arena's heap`;
      break;
    }
    if (off + size > end) {
      reason = `the chunk at ${hex(base + BigInt(off))} of size ${size} runs past the end of the region (${hex(base + BigInt(end))})`;
      break;
    }
    if ((flags & P_BIT) === 0) {
      // The previous chunk is free: glibc merges free neighbours and keeps
      // prev_size equal to the free chunk's size.
      if (count === 0) {
        reason = `the first chunk, at ${hex(base + BigInt(off))}, says the chunk before it is free`;
        break;
      }
      if ((bits[count - 1] & P_BIT) === 0) {
        reason = `the chunks at ${hex(base + BigInt(offsets[count - 1]))} and before are both free, which glibc never leaves unmerged`;
        break;
      }
      const prevSize = words[w + 1] * TWO_32 + words[w];
      if (prevSize !== sizes[count - 1]) {
        reason = `the chunk at ${hex(base + BigInt(off))} has prev_size ${prevSize}, but the free chunk before it has size ${sizes[count - 1]}`;
        break;
      }
      bits[count - 1] |= FREE_BIT;
    }
    push(off, size, flags);
    if (size === FENCEPOST && mainArena) {
      // Only a pair of 16-byte fenceposts ending exactly at the break.
      const next = off + size;
      if (next + FENCEPOST === end && words[(next >>> 2) + 2] === (FENCEPOST | P_BIT) && words[(next >>> 2) + 3] === 0 && count >= 1) {
        push(next, FENCEPOST, P_BIT);
        off = end;
        ending = 'fencepost';
        break;
      }
      reason = `the chunk at ${hex(base + BigInt(off))} has size ${FENCEPOST}, but it is not the first of two fenceposts ending at the break`;
      break;
    }
    if (size === FENCEPOST) {
      // Only the fencepost pair ends an old heap: 16 bytes, then a size-0 header.
      const next = off + size;
      if (next + 16 <= end && words[(next >>> 2) + 2] === P_BIT && words[(next >>> 2) + 3] === 0) {
        off = next;
        ending = 'fencepost';
        break;
      }
      reason = `the chunk at ${hex(base + BigInt(off))} has size ${FENCEPOST}, but no fencepost follows it`;
      break;
    }
    const atTop = off === topOffset;
    const atEnd = off + size === end;
    if (atTop || atEnd) {
      if (atTop !== atEnd && topOffset >= 0) {
        reason = atTop
          ? `the top chunk at ${hex(base + BigInt(off))} ends at ${hex(base + BigInt(off + size))}, not at the end of the region (${hex(base + BigInt(end))})`
          : `the chunk at ${hex(base + BigInt(off))} ends the region, but the arena's top is ${hex(topAddress!)}`;
        off += size;
        break;
      }
      if ((flags & P_BIT) === 0) {
        reason = `the top chunk at ${hex(base + BigInt(off))} says the chunk before it is free; glibc would have merged them`;
        off += size;
        break;
      }
      top = count - 1;
      ending = 'top';
      off += size;
      break;
    }
    off += size;
  }
  return {
    base,
    table: { count, offsets, sizes, bits },
    ending: reason === undefined ? ending : 'stopped',
    ...(reason === undefined ? {} : { reason }),
    top,
    reached: off,
  };
}
