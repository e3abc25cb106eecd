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
  const top = o.top === undefined ? undefined : toAddress(o.top, 'options.top');
  for (const flag of ['fenceposts', 'mainArena'] as const) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw typeError(`options.${flag} must be a boolean, got ${describe(o[flag])}`);
  }
  const walker = new ChunkWalker(base, { start, end, ...(top === undefined ? {} : { top }), fenceposts: o.fenceposts === true, mainArena: o.mainArena === true });
  walker.feed(snapshot, 0);
  return walker.result();
}

/** Where a window must start for the walk to go on, or that the walk has ended. */
export type FeedResult = { done: true } | { done: false; next: number };

/**
 * The walk fed a window of the region at a time (a region too big to copy
 * whole is read a window at a time into one array): the same checks as
 * walkSnapshot, whose one window is the whole copy. Each window starts at
 * a chunk; feed() walks as far as the window holds `header` bytes of the
 * next chunk (and the whole chunk when it is at most `whole` bytes), then
 * says where the next window must start. Offsets count from the region's
 * `base`; options are walkSnapshot's, already checked.
 */
export class ChunkWalker {
  readonly base: bigint;
  /** Where the first window must start: the first chunk's offset. */
  readonly start: number;
  private readonly end: number;
  private readonly topOffset: number;
  private readonly topAddress: bigint | undefined;
  private readonly fenceposts: boolean;
  private readonly mainArena: boolean;
  private readonly header: number;
  private readonly whole: number;
  // Small columns that double as needed. Sized for every chunk the region
  // could hold (one per 32 bytes), a big heap's columns were tens of MiB of
  // fresh memory whose first touch cost 3-4x the loop itself (bench/run.mjs,
  // a million chunks); doubling copies less than that.
  private capacity: number;
  private offsets: Float64Array;
  private sizes: Float64Array;
  private bits: Uint8Array;
  count = 0;
  private off: number;
  private reason: string | undefined;
  private ending: SnapshotWalk['ending'] = 'stopped';
  private top = -1;
  private done = false;

  constructor(
    base: bigint,
    options: { start: number; end: number; top?: bigint; fenceposts: boolean; mainArena: boolean; header?: number; whole?: number; expected?: number },
  ) {
    // Own properties only: an Object.prototype.top set by someone else is no top.
    const o = readOptions(options, 'options', ['start', 'end', 'top', 'fenceposts', 'mainArena', 'header', 'whole', 'expected']) as Partial<typeof options>;
    this.base = base;
    this.start = o.start!;
    this.end = o.end!;
    this.topAddress = o.top;
    this.topOffset = o.top === undefined ? -1 : Number(o.top - base);
    this.fenceposts = o.fenceposts === true;
    this.mainArena = o.mainArena === true;
    this.header = o.header ?? 16;
    this.whole = o.whole ?? 0;
    this.capacity = Math.max(16, o.expected ?? Math.min(Math.ceil((this.end - this.start) / MIN_CHUNK) + 1, 1 << 16));
    this.offsets = new Float64Array(this.capacity);
    this.sizes = new Float64Array(this.capacity);
    this.bits = new Uint8Array(this.capacity);
    this.off = this.start;
    if ((Number(base % BigInt(ALIGN)) + this.start) % ALIGN !== 0) {
      this.reason = `the first chunk at ${hex(base + BigInt(this.start))} is not ${ALIGN}-byte aligned`;
      this.done = true;
    }
  }

  /** The chunks so far, offsets from the region's base and sizes: valid below `count`, until the next feed(). */
  columns(): { offsets: Float64Array; sizes: Float64Array } {
    return { offsets: this.offsets, sizes: this.sizes };
  }

  private grow(): void {
    this.capacity *= 2;
    const o = new Float64Array(this.capacity); o.set(this.offsets); this.offsets = o;
    const s = new Float64Array(this.capacity); s.set(this.sizes); this.sizes = s;
    const b = new Uint8Array(this.capacity); b.set(this.bits); this.bits = b;
  }

  /** Walks the chunks of `window`, the region's bytes from offset `at` (a chunk's start, or the walk's start). */
  feed(window: Uint8Array, at: number): FeedResult {
    if (this.done) return { done: true };
    if (at > this.off || (this.off - at) % 4 !== 0) throw rangeError(`the window must start at offset ${this.off}, where the walk stands, or before it by a multiple of 4, not at ${at}`);
    // A Uint32Array view needs 4-byte alignment; a Buffer from a pool slice may lack it.
    const bytes = window.byteOffset % 4 === 0 ? window : new Uint8Array(window);
    // (Not `>>> 2`: a 4 GiB snapshot's length does not fit in 32 bits.)
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 4));
    const { base, end, topOffset, fenceposts, mainArena } = this;
    const windowEnd = at + window.length;
    // The window ends before the region: the walk stops for a new window where the next chunk does not fit in this one.
    const cut = windowEnd < end;
    const header = this.header;
    const whole = this.whole;
    let off = this.off;
    let reason: string | undefined;
    // The columns in locals for the loop (a field load per chunk costs as much as the rest); written back below.
    let { offsets, sizes, bits, count } = this;
    const push = (offset: number, size: number, flags: number): void => {
      if (count === this.capacity) {
        this.count = count;
        this.grow();
        ({ offsets, sizes, bits } = this);
      }
      offsets[count] = offset;
      sizes[count] = size;
      bits[count] = flags;
      count++;
    };
    while (reason === undefined) {
      if (cut && Math.min(off + header, end) > windowEnd) {
        this.off = off;
        this.count = count;
        return { done: false, next: off };
      }
      if (off + 16 > end) {
        reason = `the chunk header at ${hex(base + BigInt(off))} runs past the end of the region (${hex(base + BigInt(end))})`;
        break;
      }
      const w = (off - at) >>> 2;
      const low = words[w + 2];
      const high = words[w + 3];
      const flags = low & 7;
      if (high >= SIZE_HIGH_LIMIT) {
        reason = `the chunk at ${hex(base + BigInt(off))} has an impossible size word ${hex((BigInt(high) << 32n) | BigInt(low))}`;
        break;
      }
      const size = high * TWO_32 + (low - flags);
      if (cut && size <= whole && off + size > windowEnd && off + size <= end) {
        this.off = off;
        this.count = count;
        return { done: false, next: off };
      }
      if (size === 0 && fenceposts && flags === P_BIT && count > 0) {
        this.ending = 'fencepost';
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
        const n = (next - at) >>> 2;
        if (next + FENCEPOST === end && words[n + 2] === (FENCEPOST | P_BIT) && words[n + 3] === 0 && count >= 1) {
          push(next, FENCEPOST, P_BIT);
          off = end;
          this.ending = 'fencepost';
          break;
        }
        reason = `the chunk at ${hex(base + BigInt(off))} has size ${FENCEPOST}, but it is not the first of two fenceposts ending at the break`;
        break;
      }
      if (size === FENCEPOST) {
        // Only the fencepost pair ends an old heap: 16 bytes, then a size-0 header.
        const next = off + size;
        const n = (next - at) >>> 2;
        if (next + 16 <= end && words[n + 2] === P_BIT && words[n + 3] === 0) {
          off = next;
          this.ending = 'fencepost';
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
            : `the chunk at ${hex(base + BigInt(off))} ends the region, but the arena's top is ${hex(this.topAddress!)}`;
          off += size;
          break;
        }
        if ((flags & P_BIT) === 0) {
          reason = `the top chunk at ${hex(base + BigInt(off))} says the chunk before it is free; glibc would have merged them`;
          off += size;
          break;
        }
        this.top = count - 1;
        this.ending = 'top';
        off += size;
        break;
      }
      off += size;
    }
    this.off = off;
    this.count = count;
    this.reason = reason;
    this.done = true;
    return { done: true };
  }

  /** The walk so far: whole once feed() said done, else `stopped` with the reason given. */
  result(unfinished?: string): SnapshotWalk {
    const reason = this.reason ?? (this.done ? undefined : unfinished ?? `the walk stopped at ${hex(this.base + BigInt(this.off))} before its region ended`);
    return {
      base: this.base,
      table: { count: this.count, offsets: this.offsets, sizes: this.sizes, bits: this.bits },
      ending: reason === undefined ? this.ending : 'stopped',
      ...(reason === undefined ? {} : { reason }),
      top: this.top,
      reached: this.off,
    };
  }
}
