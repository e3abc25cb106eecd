// The chunk walk itself: a pure pass over a copy of heap memory. It trusts
// nothing it reads: every size is checked before it is used to move on, so
// a torn or corrupt snapshot ends the walk with a reason, never a loop.
import { HeapscopeError, rangeError, typeError } from '../errors';
import { EXACT_HIGH_LIMIT, TWO_32 } from '../exact';
import { hex } from '../format';
import { dropPages, FRESH_FROM, zeroedArray, zeroedBytes } from '../fresh-memory';
import { describe, lazyFields, readOptions, toAddress, toBytes, toIndex } from '../validate';

/** glibc's MINSIZE and MALLOC_ALIGNMENT on x86_64. */
const MIN_CHUNK = 32;
const ALIGN = 16;
/**
 * A 16-byte fencepost chunk (CHUNK_HDR_SZ). A thread arena heap that is not
 * the arena's newest ends in a size-0 header after one, or after a 32-byte
 * one (the old top of 48 bytes, marked in use: see isFencepost). main_arena's
 * [heap] ends in two, right at the break, once brk() has failed and sysmalloc
 * has moved the top into memory from mmap (the arena turned non-contiguous);
 * in three when the old top had 48 bytes (16 of it are left before the two).
 */
const FENCEPOST = 16;

/** Bits of {@link ChunkTable.bits}: the size word's P, M and A flags, plus FREE_BIT. */
export const P_BIT = 1;
export const M_BIT = 2;
export const A_BIT = 4;
/** The next chunk's P bit is clear: the chunk sits in a bin (tcache and fastbin chunks keep P set). */
export const FREE_BIT = 8;

/**
 * A column of chunk offsets: 32-bit where the region's offsets fit (every
 * arena heap, and any [heap] below 4 GiB), else doubles. A walk writes its
 * columns into memory touched for the first time, which cost this machine
 * 2-28 ms more a walk of a million chunks than the same columns written
 * again (the store pass alone took ~12 ms): 4 bytes an offset, not 8.
 */
export type Offsets = Uint32Array | Float64Array;

/** A column of `length` offsets, none of them above `most`: 32-bit where they fit. */
export function offsetColumn(length: number, most: number): Offsets {
  return offsetBytes(most) === 4 ? zeroedArray(Uint32Array, length) : zeroedArray(Float64Array, length);
}

/** The bytes an offset takes in a region ending at `end` (its largest offset). */
const offsetBytes = (end: number): number => (end < 2 ** 32 ? 4 : 8);

/**
 * The chunks of one walk as the walk stores them, column by column: no
 * object per chunk, and no column of sizes. The chunks tile the region, so
 * each chunk ends where the next begins, and `offsets[count]` holds where
 * the walk reached: chunk i's size is `offsets[i + 1] - offsets[i]`
 * ({@link chunkSize}). A column of sizes was 8 of the 17 bytes a chunk
 * cost, in fresh memory, whose first touch can cost more than the walk that
 * fills it: on a VM where memory left free for 3 s then cost ~2 ms a MiB
 * to touch again (against ~0.1 after 0.2 s), walkHeap() over a million
 * chunks took 149-155 ms without it against 165-181 with it (medians of 30
 * walks, three runs each).
 */
export interface ChunkColumns {
  count: number;
  /** Offset of each chunk from the snapshot's first byte, then (at `count`) the offset just past the last chunk. */
  offsets: Offsets;
  /** The size word's low three bits (P_BIT, M_BIT, A_BIT) and FREE_BIT. */
  bits: Uint8Array;
}

/** The chunks of one walk, column by column (walkSnapshot's table): the stored columns and each chunk's size. */
export interface ChunkTable extends ChunkColumns {
  /** Size of each chunk, flags masked off. */
  sizes: Float64Array;
}

/** Chunk i's size, from where it and the next one start. */
export function chunkSize(table: ChunkColumns, i: number): number {
  return table.offsets[i + 1] - table.offsets[i];
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

export interface SnapshotWalk<Table extends ChunkColumns = ChunkTable> {
  /** The address of the snapshot's first byte. */
  base: bigint;
  /**
   * From walkSnapshot, the columns are built when first read, by a second
   * walk of the same bytes (the first only checks and counts); if the bytes
   * changed or were detached in between, reading them throws
   * `ERR_SNAPSHOT_CHANGED`.
   */
  table: Table;
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

/** A walk as the walker stores it: the allocator's walks, and windowed walks of another process. */
export type StoredWalk = SnapshotWalk<ChunkColumns>;

/** walkSnapshot's arguments checked: the ChunkWalker's settings. */
function walkSettings(snapshot: Uint8Array, base: bigint, options: SnapshotWalkOptions) {
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
  return { start, end, ...(top === undefined ? {} : { top }), fenceposts: o.fenceposts === true, mainArena: o.mainArena === true };
}

/**
 * walkSnapshot for a caller that reads the columns at once (the allocator's
 * walks), where walkSnapshot stores them when they are first read. Columns
 * that grew by doubling as the walk went left a trail of typed arrays from
 * this process's malloc, freed whenever V8 collected them: in the middle of
 * an experiment's plan, kernel-calls then found a free chunk that had not
 * been there when it read the bins (7 runs in 12 under a 64 KiB threshold).
 * Sized for the region instead, every walk of a thread heap of ten chunks
 * took 1.1 MB. So a region whose columns could fill 2 MiB or more is walked
 * once, into memory the addon maps for the most chunks it could hold, whose
 * pages are faulted in as the walk writes them, and whose unwritten ends
 * are handed back after (dropUnused); a smaller one is counted first, then
 * stored into columns of exactly that many chunks. Over a million chunks
 * the count was a second read of 60 MiB: walkHeap() took 132-139 ms with
 * one pass against 149-155 with two (medians of 30 walks).
 */
export function walkSnapshotStored(snapshot: Uint8Array, base: bigint, options: SnapshotWalkOptions = {}): StoredWalk {
  const settings = walkSettings(snapshot, base, options);
  // Every chunk but a fencepost (at most three, of 16 bytes) has 32 bytes or more.
  const most = Math.floor((settings.end - settings.start) / MIN_CHUNK) + 4;
  const once = columnBytes(most, settings.end) >= FRESH_FROM ? reservedWalker(base, settings, most) : undefined;
  if (once !== undefined) {
    once.feed(snapshot, 0);
    once.dropUnused();
    return once.result();
  }
  return storingPass(snapshot, base, settings, countingPass(snapshot, base, settings).count).result();
}

/**
 * A walker whose columns hold `most` chunks, not faulted in; undefined when
 * they cannot be mapped (a commit limit that counts all of them: the two
 * passes then need only what the region holds).
 */
function reservedWalker(base: bigint, settings: WalkSettings, most: number): ChunkWalker | undefined {
  try {
    return new ChunkWalker(base, { ...settings, expected: most, populate: false });
  } catch (error) {
    if (error instanceof HeapscopeError && error.code === 'ERR_ALLOC_FAILED') return undefined;
    throw error;
  }
}

/** The bytes of columns for `capacity` chunks of a region ending at `end`: an offset and a byte of bits a chunk, and the last chunk's end. */
const columnBytes = (capacity: number, end: number): number => (offsetBytes(end) + 1) * capacity + offsetBytes(end);

type WalkSettings = ReturnType<typeof walkSettings>;

/** The pass that checks and counts, storing nothing. */
function countingPass(snapshot: Uint8Array, base: bigint, settings: WalkSettings): ChunkWalker {
  const counter = new ChunkWalker(base, { ...settings, store: false });
  counter.feed(snapshot, 0);
  return counter;
}

/** The pass that stores the columns, sized for the `count` chunks a counting pass found. */
function storingPass(snapshot: Uint8Array, base: bigint, settings: WalkSettings, count: number): ChunkWalker {
  const walker = new ChunkWalker(base, { ...settings, expected: count + 1 });
  walker.feed(snapshot, 0);
  return walker;
}

/**
 * Walks the chunks in `snapshot` (a copy of memory whose first byte was at
 * `base`) from `options.start` to the top chunk. Pure: it looks at nothing
 * but its arguments, so it can be timed alone.
 */
export function walkSnapshot(snapshot: Uint8Array, base: bigint, options: SnapshotWalkOptions = {}): SnapshotWalk {
  const settings = walkSettings(snapshot, base, options);
  // The walk checks and counts without storing: a million chunks' columns
  // are 9 MB of fresh memory (17 MB when they held sizes, whose first touch
  // cost 4-20x the checking loop itself). The columns are built when first
  // read.
  const counter = countingPass(snapshot, base, settings);
  const counted = counter.result();
  // What the columns must agree with, kept apart from the result a caller may edit.
  const { ending, top: topIndex, reached } = counted;
  // Own only when the walk stopped (an Object.prototype.reason is none of ours).
  const reasonOf = (w: StoredWalk): string | undefined => (w.ending === 'stopped' ? w.reason : undefined);
  const reason = reasonOf(counted);
  const { count } = counted.table;
  const { digest } = counter;
  const length = snapshot.length;
  return { ...counted, table: lazyTable(count, () => {
    // A buffer transferred (or a view that shrank) meanwhile is a change too.
    if (count === 0 && snapshot.byteLength === length) return { count, offsets: offsetColumn(1, reached).fill(reached), sizes: new Float64Array(0), bits: new Uint8Array(0) };
    const again = snapshot.byteLength === length ? storingPass(snapshot, base, settings, count) : undefined;
    const columns = again?.result();
    if (columns === undefined || columns.ending !== ending || reasonOf(columns) !== reason || columns.top !== topIndex
      || columns.reached !== reached || columns.table.count !== count || again!.digest !== digest) {
      throw new HeapscopeError('ERR_SNAPSHOT_CHANGED', `the snapshot's bytes changed after walkSnapshot walked them (${count} chunks, ${ending}), before its table's columns were first read; walk it again`);
    }
    // The sizes, which the walk does not store, for a caller of the public walk (this process's own decode reads chunkSize).
    const { offsets, bits } = columns.table;
    const sizeBytes = zeroedBytes(8 * count);
    const sizes = new Float64Array(sizeBytes.buffer, sizeBytes.byteOffset, count);
    for (let i = 0; i < count; i++) sizes[i] = offsets[i + 1] - offsets[i];
    return { count, offsets, sizes, bits };
  }) };
}

/** A table whose columns are made on first read, by `build` (see lazyFields). */
function lazyTable(count: number, build: () => ChunkTable): ChunkTable {
  const table = { count } as ChunkTable;
  lazyFields(table, KEYS, build);
  return table;
}

const KEYS = ['offsets', 'sizes', 'bits'] as const;

/**
 * The index of the last chunk of a table's `offsets` (sorted, `count` long)
 * at or below `offset`, or -1. With `near`, an index to start from (the last
 * one found, for a caller looking up chunks in list order): the search
 * gallops out from there, and a chunk a few chunks away is found in a few
 * reads of memory already in cache, where halving a million offsets from
 * the ends read twenty, most of them misses.
 */
export function chunkAtOrBefore(offsets: Offsets, count: number, offset: number, near = -1): number {
  // The search below narrows [lo, hi): every offset before lo is at or below `offset`, every one from hi on above it.
  let lo = 0;
  let hi = count;
  if (near >= 0 && near < count) {
    let step = 1;
    let probe: number;
    if (offsets[near] <= offset) {
      let below = near;
      for (probe = near + 1; probe < count && offsets[probe] <= offset; probe = near + step) {
        below = probe;
        step *= 2;
      }
      lo = below + 1;
      hi = Math.min(probe, count);
    } else {
      let above = near;
      for (probe = near - 1; probe >= 0 && offsets[probe] > offset; probe = near - step) {
        above = probe;
        step *= 2;
      }
      lo = Math.max(probe + 1, 0);
      hi = above;
    }
  }
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (offsets[mid] <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
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
  /** Where the second of a double fencepost in main_arena's [heap] is, once its first was met. */
  private pairSecond = -1;
  private readonly whole: number;
  // Small columns that double as needed, unless sized by `expected`. Sized
  // for every chunk the region could hold (one per 32 bytes) and faulted in
  // whole, a big heap's columns were tens of MiB of fresh memory whose first
  // touch cost 3-4x the loop itself (bench/run.mjs, a million chunks);
  // walkSnapshotStored sizes them so only with `populate` false, and gives
  // back what the walk did not write (dropUnused).
  private capacity: number;
  /** One longer than the capacity: the last chunk's end follows it (ChunkColumns). */
  private offsets: Offsets;
  private bits: Uint8Array;
  count = 0;
  /** Whether the columns are kept: a walk that only checks and counts stores none (walkSnapshot's first pass). */
  private readonly store: boolean;
  private lastSize = 0;
  private lastBits = 0;
  /** A hash of every size word the walk read (FNV-1a over their low and high halves): walkSnapshot's two passes must agree on it. */
  digest = 0;
  private off: number;
  private reason: string | undefined;
  private ending: SnapshotWalk['ending'] = 'stopped';
  private top = -1;
  private done = false;

  constructor(
    base: bigint,
    options: { start: number; end: number; top?: bigint; fenceposts: boolean; mainArena: boolean; header?: number; whole?: number; expected?: number; store?: boolean; populate?: boolean },
  ) {
    // Own properties only: an Object.prototype.top set by someone else is no top.
    const o = readOptions(options, 'options', ['start', 'end', 'top', 'fenceposts', 'mainArena', 'header', 'whole', 'expected', 'store', 'populate']) as Partial<typeof options>;
    this.base = base;
    this.start = o.start!;
    this.end = o.end!;
    this.topAddress = o.top;
    this.topOffset = o.top === undefined ? -1 : Number(o.top - base);
    this.fenceposts = o.fenceposts === true;
    this.mainArena = o.mainArena === true;
    this.header = o.header ?? 16;
    this.whole = o.whole ?? 0;
    this.store = o.store !== false;
    this.capacity = !this.store ? 0 : Math.max(16, o.expected ?? Math.min(Math.ceil((this.end - this.start) / MIN_CHUNK) + 1, 1 << 16));
    // The two columns on one buffer, in fresh memory faulted in at once when big (fresh-memory.ts).
    const bytes = zeroedBytes(columnBytes(this.capacity, this.end), o.populate !== false);
    const width = offsetBytes(this.end);
    this.offsets = width === 4 ? new Uint32Array(bytes.buffer, bytes.byteOffset, this.capacity + 1) : new Float64Array(bytes.buffer, bytes.byteOffset, this.capacity + 1);
    this.bits = bytes.subarray(width * (this.capacity + 1), (width + 1) * this.capacity + width);
    this.off = this.start;
    // Where a walk of no chunk reached, should it end before its first feed.
    this.offsets[0] = this.start;
    if ((Number(base % BigInt(ALIGN)) + this.start) % ALIGN !== 0) {
      this.reason = `the first chunk at ${hex(base + BigInt(this.start))} is not ${ALIGN}-byte aligned`;
      this.done = true;
    }
  }

  /** The chunks so far as columns (offsets from the region's base, the last chunk's end at `count`), until the next feed(). */
  columns(): ChunkColumns {
    return { count: this.count, offsets: this.offsets, bits: this.bits };
  }

  private grow(): void {
    this.capacity *= 2;
    const o = offsetColumn(this.capacity + 1, this.end); o.set(this.offsets); this.offsets = o;
    const b = zeroedBytes(this.capacity); b.set(this.bits); this.bits = b;
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
    let { offsets, bits, count } = this;
    // The chunk before the next one, which the checks compare with (it starts
    // lastSize bytes back): kept in locals too, since a walk that stores no
    // columns has only these.
    let { lastSize, lastBits, capacity, digest } = this;
    const store = this.store;
    const badFlags = mainArena ? M_BIT | A_BIT : M_BIT;
    for (;;) {
      if (!cut && !store) {
        // A walk that only checks and counts, over the whole region, takes
        // the common chunk in a loop of its own: below 2 GiB, of a valid
        // size, its P bit set, neither the top nor the region's last. The
        // first chunk that is anything else leaves it for the loop below,
        // which checks that chunk one test at a time. (The two loops hash
        // the size words alike: walkSnapshot's passes compare the hash.)
        for (;;) {
          const w = (off - at) >>> 2;
          const signed = words[w + 2] | 0;
          const size = signed & ~7;
          const next = off + size;
          if (words[w + 3] !== 0 || signed < 0 || size < MIN_CHUNK || (size & (ALIGN - 1)) !== 0 || (signed & badFlags) !== 0 ||
            (signed & P_BIT) === 0 || off === topOffset || next + FENCEPOST > end) break;
          digest = Math.imul(digest ^ signed, 0x01000193);
          lastSize = size;
          lastBits = signed & 7;
          count++;
          off = next;
        }
      }
      if (cut && Math.min(off + header, end) > windowEnd) return this.pause(off, count, lastSize, lastBits, digest);
      if (off + 16 > end) {
        reason = `the chunk header at ${hex(base + BigInt(off))} runs past the end of the region (${hex(base + BigInt(end))})`;
        break;
      }
      const w = (off - at) >>> 2;
      // A size below 2 GiB is the common case, in 32-bit integer arithmetic
      // (2-3x faster than doubles); V8 keeps the loop in integers as long
      // as no bigger size has been met.
      const signed = words[w + 2] | 0;
      const high = words[w + 3];
      const flags = signed & 7;
      let size: number;
      if (high === 0 && signed >= 0) {
        size = signed & ~7;
      } else {
        if (high >= EXACT_HIGH_LIMIT) {
          reason = `the chunk at ${hex(base + BigInt(off))} has an impossible size word ${hex((BigInt(high) << 32n) | BigInt(signed >>> 0))}`;
          break;
        }
        size = high * TWO_32 + ((signed >>> 0) - flags);
      }
      if (cut && size <= whole && off + size > windowEnd && off + size <= end) return this.pause(off, count, lastSize, lastBits, digest);
      digest = Math.imul(digest ^ signed ^ high, 0x01000193);
      // One test for the common chunk; the checks one by one say which failed.
      if (size < MIN_CHUNK || (size & (ALIGN - 1)) !== 0 || (flags & badFlags) !== 0 || off + size > end) {
        if (size === 0 && fenceposts && flags === P_BIT && count > 0) {
          this.ending = 'fencepost';
          break;
        }
        if (size === 0) {
          reason = `the chunk at ${hex(base + BigInt(off))} has size 0`;
          break;
        }
        if ((size & (ALIGN - 1)) !== 0) {
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
      }
      if ((flags & P_BIT) === 0) {
        // The previous chunk is free: glibc merges free neighbours and keeps
        // prev_size equal to the free chunk's size.
        if (count === 0) {
          reason = `the first chunk, at ${hex(base + BigInt(off))}, says the chunk before it is free`;
          break;
        }
        if ((lastBits & P_BIT) === 0) {
          reason = `the chunks at ${hex(base + BigInt(off - lastSize))} and before are both free, which glibc never leaves unmerged`;
          break;
        }
        const prevSize = words[w + 1] * TWO_32 + words[w];
        if (prevSize !== lastSize) {
          reason = `the chunk at ${hex(base + BigInt(off))} has prev_size ${prevSize}, but the free chunk before it has size ${lastSize}`;
          break;
        }
        lastBits |= FREE_BIT;
        if (store) bits[count - 1] |= FREE_BIT;
      }
      if (store) {
        if (count === capacity) {
          this.grow();
          ({ offsets, bits, capacity } = this);
        }
        offsets[count] = off;
        bits[count] = flags;
      }
      lastSize = size;
      lastBits = flags;
      count++;
      if (size === FENCEPOST && mainArena) {
        // Only a pair of 16-byte fenceposts (or the 16-byte old top before one), where main_arena's top left [heap].
        const next = off + size;
        if (off === this.pairSecond) {
          // The pair's second. At the break, [heap] ends here. Short of it, glibc's later sbrk (the break could grow
          // again) went on from here with a chunk (its new top, P set); where what follows is no such header, its chunks end here.
          off = next;
          const m = (off - at) >>> 2;
          const word = words[m + 2];
          const high = words[m + 3];
          // As the loop reads a size: a 2 GiB top is a size too.
          const after = high === undefined || high >= EXACT_HIGH_LIMIT ? -1 : high * TWO_32 + ((word >>> 0) - (word & 7));
          if (off === end || word === undefined || (word & P_BIT) === 0 || (word & badFlags) !== 0 ||
            after < MIN_CHUNK || after % ALIGN !== 0 || off + after > end) {
            this.ending = 'fencepost';
            break;
          }
          continue;
        }
        const n = (next - at) >>> 2;
        const pair = words[n + 2] === (FENCEPOST | P_BIT) && words[n + 3] === 0 && next + FENCEPOST <= end;
        // sysmalloc shrinks the old top by the pair (old_size - 2 * CHUNK_HDR_SZ): one of 48 bytes leaves 16 before it.
        if (pair && words[n + 6] === (FENCEPOST | P_BIT) && words[n + 7] === 0 && next + 2 * FENCEPOST <= end) {
          off = next;
          continue;
        }
        if (pair) {
          // Kept on the walker, not in a local: a window may end between the two.
          this.pairSecond = next;
          off = next;
          continue;
        }
        reason = `the chunk at ${hex(base + BigInt(off))} has size ${FENCEPOST}, but it is not the first of two fenceposts, nor an old top of 16 bytes before them`;
        // Past the chunk stored: the columns read its size from where the walk reached.
        off = next;
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
        off = next;
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
    this.pause(off, count, lastSize, lastBits, digest);
    this.reason = reason;
    this.done = true;
    return { done: true };
  }

  /** Keeps where the walk stands for the next window (or for result()). */
  private pause(off: number, count: number, lastSize: number, lastBits: number, digest: number): FeedResult {
    this.off = off;
    this.count = count;
    // The last chunk ends where the walk stands (the offsets column is one longer than the others).
    if (this.store) this.offsets[count] = off;
    this.lastSize = lastSize;
    this.lastBits = lastBits;
    this.digest = digest;
    return { done: false, next: off };
  }

  /**
   * Gives back the pages of the columns past the chunks stored: the walk
   * wrote them in huge pages, whose unwritten parts stayed resident (eight
   * walks of a 64 MiB region of two chunks: 16.8 MB, fresh-memory.test.ts).
   * Whether the columns were the addon's to give back.
   */
  dropUnused(): boolean {
    const { offsets, bits, capacity, count } = this;
    if (offsets.buffer !== bits.buffer) return false;
    const width = offsets.BYTES_PER_ELEMENT;
    return dropPages(offsets.buffer, offsets.byteOffset + width * (count + 1), offsets.byteOffset + width * (capacity + 1)) &&
      dropPages(bits.buffer, bits.byteOffset + count, bits.byteOffset + capacity);
  }

  /** The walk so far: whole once feed() said done, else `stopped` with the reason given. */
  result(unfinished?: string): StoredWalk {
    const reason = this.reason ?? (this.done ? undefined : unfinished ?? `the walk stopped at ${hex(this.base + BigInt(this.off))} before its region ended`);
    return {
      base: this.base,
      table: this.columns(),
      ending: reason === undefined ? this.ending : 'stopped',
      ...(reason === undefined ? {} : { reason }),
      top: this.top,
      reached: this.off,
    };
  }
}
