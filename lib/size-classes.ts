// glibc malloc's size-class arithmetic for x86_64 (glibc ≥ 2.26), as pure
// functions. Each one restates a macro of glibc's malloc/malloc.c, named in
// its doc comment, so that predictions can be checked against the live
// allocator (see test/size-classes.test.ts) instead of being trusted.
//
// Not modelled: the large-chunk tcache bins of glibc 2.42, tunables
// (glibc.malloc.tcache_max, tcache_count, mxfast) that move the limits, and
// 2.43's fill count of 16. fastbinIndex is the macro of 2.42 and before;
// sizeClass (size-class.ts) follows the release, 2.43's removal of the
// fastbins included. 2.43's mmapped chunk layout is: pass `tail`
// (GlibcLayout.mmappedTail) to mmappedChunkSize and usableSizeOf.
import { rangeError } from './errors';
import { Size, toIndex, toSize } from './validate';

// Sizes are plain numbers. Every size here is validated to at most
// Number.MAX_SAFE_INTEGER (2^53 − 1, far above the 2^47 bytes of x86_64 user
// space), so the arithmetic below (+, −, %, and × or ÷ by powers of two) is
// exact. No bitwise operators: on numbers they truncate to 32 bits.

/** `SIZE_SZ`: sizeof(INTERNAL_SIZE_T), one header word. */
export const SIZE_SZ = 8;
/** `MALLOC_ALIGNMENT`: user pointers and chunk sizes are multiples of it. */
export const MALLOC_ALIGNMENT = 16;
/** `MINSIZE` (= `MIN_CHUNK_SIZE` rounded to the alignment): the smallest chunk. */
export const MINSIZE = 32;
/** `TCACHE_MAX_BINS`: tcache bins per thread, one per chunk size 0x20 … 0x410. */
export const TCACHE_MAX_BINS = 64;
/** `TCACHE_FILL_COUNT`: default entries a tcache bin holds before free falls through to the arena (to 2.42; 16 from 2.43, 0b9210bd76). */
export const TCACHE_FILL_COUNT = 7;
/** `MAX_TCACHE_SIZE` = `tidx2usize(TCACHE_MAX_BINS - 1)`: the largest tcached request, 1032 (chunk 0x410). */
export const MAX_TCACHE_SIZE = 1032;
/**
 * `DEFAULT_MXFAST` = 64 × SIZE_SZ / 4 = 128, the value main_arena passes to
 * `set_max_fast`. It is an M_MXFAST-style request bound, not a chunk size:
 * see `globalMaxFast`.
 */
export const DEFAULT_MXFAST = 128;
/** `MAX_FAST_SIZE` = 80 × SIZE_SZ / 4 = 160: the largest value mallopt(M_MXFAST) accepts. */
export const MAX_FAST_SIZE = 160;
/** `NBINS`: regular bins of an arena (0 unused, 1 unsorted, 2–63 small, 64–126 large). */
export const NBINS = 128;
/** `NSMALLBINS`: bins below this index hold one chunk size each. */
export const NSMALLBINS = 64;
/** `MIN_LARGE_SIZE` = (NSMALLBINS − SMALLBIN_CORRECTION) × SMALLBIN_WIDTH: the smallest largebin chunk. */
export const MIN_LARGE_SIZE = 1024;

const MALLOC_ALIGN_MASK = MALLOC_ALIGNMENT - 1;
/** `CHUNK_HDR_SZ`: prev_size and size. */
const CHUNK_HDR_SZ = 2 * SIZE_SZ;
const UNSORTED_BIN = 1;
/** largebin_index_64 never yields 127, so the last real bin is 126. */
const LAST_BIN = 126;
/**
 * The largest request whose chunk size, `(request + SIZE_SZ + MALLOC_ALIGN_MASK)`
 * rounded down to MALLOC_ALIGNMENT, is still at most Number.MAX_SAFE_INTEGER:
 * 2^53 − 24 (chunk 2^53 − 16).
 */
const MAX_REQUEST = Number.MAX_SAFE_INTEGER - SIZE_SZ - MALLOC_ALIGN_MASK;

/** Validates a size with `toSize` (number or bigint, whole, non-negative, at most `max`) and returns it as a number. */
function toNumberSize(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  return Number(toSize(value, name, BigInt(max)));
}

/** `x & ~(alignment - 1)` for a power-of-two alignment, exact for any safe integer. */
function alignDown(x: number, alignment: number): number {
  return x - (x % alignment);
}

/**
 * `set_max_fast(s)`: the `global_max_fast` chunk-size limit that an
 * M_MXFAST value of `mxfast` (0 … MAX_FAST_SIZE) gives. Values below 8 give
 * 16, smaller than any chunk: fastbins off.
 */
export function globalMaxFast(mxfast: Size): number {
  const s = toNumberSize(mxfast, 'mxfast', MAX_FAST_SIZE);
  return s <= MALLOC_ALIGN_MASK - SIZE_SZ ? MINSIZE / 2 : alignDown(s + SIZE_SZ, MALLOC_ALIGNMENT);
}

/** `global_max_fast` of a process that never set M_MXFAST: `set_max_fast(DEFAULT_MXFAST)` = 0x80. */
export const DEFAULT_GLOBAL_MAX_FAST = globalMaxFast(DEFAULT_MXFAST);

/**
 * `request2size` via `checked_request2size`: the chunk size malloc looks
 * for when asked for `request` bytes.
 *
 * glibc refuses requests above PTRDIFF_MAX with ENOMEM (since 2.30), and
 * any request above the 2^47 bytes of x86_64 user space fails; here a
 * request above 2^53 − 24, whose chunk size would no longer be an exact
 * number, is a RangeError.
 *
 * The chunk actually handed out can be up to MINSIZE − 16 = 16 bytes
 * larger: when splitting a free chunk would leave a remainder below
 * MINSIZE, malloc hands out the whole chunk.
 */
export function requestToChunkSize(request: Size): number {
  const padded = toNumberSize(request, 'request', MAX_REQUEST) + SIZE_SZ + MALLOC_ALIGN_MASK;
  return padded < MINSIZE ? MINSIZE : alignDown(padded, MALLOC_ALIGNMENT);
}

/**
 * `musable` (what malloc_usable_size returns): a heap chunk lends the next
 * chunk's prev_size word to the user, so chunk − SIZE_SZ; an mmapped chunk
 * has no next chunk, so chunk − CHUNK_HDR_SZ, until glibc 2.43 gave it the
 * room of one (`tail` 16, see mmappedChunkSize): chunk − SIZE_SZ again.
 */
export function usableSizeOf(chunkSize: Size, mmapped = false, tail: MmappedTail = 0): number {
  const size = toChunkSize(chunkSize);
  return size - (mmapped && toTail(tail) === 0 ? CHUNK_HDR_SZ : SIZE_SZ);
}

/** Bytes of an mmapped chunk's mapping past its size: 0 to glibc 2.42, CHUNK_HDR_SZ (16) from 2.43 (GlibcLayout.mmappedTail). */
export type MmappedTail = 0 | 16;

function toTail(tail: unknown): MmappedTail {
  if (tail !== 0 && tail !== 16) throw rangeError(`tail must be 0 (glibc 2.42 and before) or 16 (2.43 on), got ${String(tail)}`);
  return tail;
}

/**
 * The chunk size of a request that is served by its own mmap, from
 * sysmalloc_mmap with nb = `request2size(request)`: to glibc 2.42 (`tail`
 * 0) the mapping, `ALIGN_UP(nb + SIZE_SZ, pagesize)` (one SIZE_SZ more than
 * a heap chunk, as there is no next chunk to lend its prev_size); from 2.43
 * (`tail` 16, 614cfd0f8a) the mapping `ALIGN_UP(nb + CHUNK_HDR_SZ,
 * pagesize)` less those 16 bytes, which stand for a next chunk's header as
 * a heap chunk has one. A result above Number.MAX_SAFE_INTEGER is a
 * RangeError.
 */
export function mmappedChunkSize(request: Size, pageSize: Size, tail: MmappedTail = 0): number {
  const page = toNumberSize(pageSize, 'pageSize');
  // A power of two has a single set bit; checked on the bigint, as bitwise
  // operators on numbers only see the low 32 bits.
  const bits = BigInt(page);
  if (page < MALLOC_ALIGNMENT || (bits & (bits - 1n)) !== 0n) {
    throw rangeError(`pageSize must be a power of two of at least ${MALLOC_ALIGNMENT}, got ${page}`);
  }
  const past = toTail(tail);
  const size = requestToChunkSize(request) + (past === 0 ? SIZE_SZ : CHUNK_HDR_SZ);
  const mapped = Math.ceil(size / page) * page;
  if (mapped > Number.MAX_SAFE_INTEGER) {
    throw rangeError(`the mmapped chunk of request ${request} with pageSize ${page} is above ${Number.MAX_SAFE_INTEGER} bytes`);
  }
  return mapped - past;
}

/** `csize2tidx` as malloc.c computes it, past the tcache's bins too. */
export function csize2tidx(chunkSize: number): number {
  return Math.floor((chunkSize - MINSIZE + MALLOC_ALIGNMENT - 1) / MALLOC_ALIGNMENT);
}

/** `tidx2csize`: the chunk size tcache bin `index` holds. */
export function tidx2csize(index: number): number {
  return index * MALLOC_ALIGNMENT + MINSIZE;
}

/**
 * `csize2tidx`: the tcache bin of a chunk size, or undefined when it is
 * at or past `TCACHE_MAX_BINS` (chunks above 0x410 are never tcached).
 */
export function tcacheIndex(chunkSize: Size): number | undefined {
  const index = csize2tidx(toChunkSize(chunkSize));
  return index < TCACHE_MAX_BINS ? index : undefined;
}

/**
 * `fastbin_index`: the fastbin of a chunk size, or undefined when the
 * chunk is above `maxFast` (`global_max_fast`, 0x80 unless M_MXFAST was
 * set: pass `globalMaxFast(value)` then). Only chunks that tcache does not
 * take (bin full) reach the fastbins. The macro of glibc 2.42 and before:
 * 2.43 has no fastbins (`sizeClass` leaves the index out there).
 */
export function fastbinIndex(chunkSize: Size, maxFast: Size = DEFAULT_GLOBAL_MAX_FAST): number | undefined {
  const size = toChunkSize(chunkSize);
  if (size > toNumberSize(maxFast, 'maxFast', globalMaxFast(MAX_FAST_SIZE))) return undefined;
  return size / 16 - 2;
}

/**
 * `smallbin_index` (SMALLBIN_CORRECTION is 0 on x86_64): 2 … 63, or
 * undefined when the chunk is not `in_smallbin_range` (≥ MIN_LARGE_SIZE).
 */
export function smallbinIndex(chunkSize: Size): number | undefined {
  const size = toChunkSize(chunkSize);
  return size < MIN_LARGE_SIZE ? size / 16 : undefined;
}

/**
 * `largebin_index_64`: 64 … 126, or undefined for chunks in smallbin range
 * (the macro would give them meaningless numbers). Bins are 64 bytes wide
 * up to 3 KiB, then 512, 4 Ki, 32 Ki and 256 Ki wide; bin 126 takes
 * everything from 512 KiB up.
 */
export function largebinIndex(chunkSize: Size): number | undefined {
  const size = toChunkSize(chunkSize);
  return size < MIN_LARGE_SIZE ? undefined : largebinIndex64(size);
}

/** `bin_index`: the regular bin (small or large) a free chunk of this size is sorted into. */
export function binIndex(chunkSize: Size): number {
  const size = toChunkSize(chunkSize);
  return size < MIN_LARGE_SIZE ? size / 16 : largebinIndex64(size);
}

/** Chunk sizes a regular bin holds; `max` is undefined for the last bin, which is unbounded. */
export interface BinRange {
  min: number;
  max: number | undefined;
}

/**
 * The chunk sizes `bin_index` maps to regular bin `index` (2 … 126). Small
 * bins hold one size; large bins' bounds come from inverting
 * `largebin_index_64` (bin 120 straddles two of its tiers, 40 960 … 65 535).
 * Bin 1 is the unsorted bin, which takes any size, and 0 and 127 are
 * never used: those are RangeErrors.
 */
export function binRange(index: number): BinRange {
  const i = toIndex(index, 'index', NBINS - 1);
  if (i <= UNSORTED_BIN || i > LAST_BIN) {
    throw rangeError(`index must be a regular bin, ${UNSORTED_BIN + 1} … ${LAST_BIN}, got ${i}` +
      (i === UNSORTED_BIN ? ' (bin 1 is the unsorted bin: any size)' : ''));
  }
  if (i < NSMALLBINS) {
    const size = i * MALLOC_ALIGNMENT;
    return { min: size, max: size };
  }
  const min = firstSizeOfLargebin(i);
  return { min, max: i === LAST_BIN ? undefined : firstSizeOfLargebin(i + 1) - MALLOC_ALIGNMENT };
}

/**
 * Chunk sizes are MINSIZE or more, multiples of MALLOC_ALIGNMENT and at most
 * Number.MAX_SAFE_INTEGER; flag bits must be masked off.
 */
function toChunkSize(value: unknown, name = 'chunkSize'): number {
  const size = toNumberSize(value, name);
  if (size < MINSIZE || size % MALLOC_ALIGNMENT !== 0) {
    throw rangeError(
      `${name} must be a chunk size (a multiple of ${MALLOC_ALIGNMENT}, at least ${MINSIZE}, flag bits masked off), got ${size}`,
    );
  }
  return size;
}

function largebinIndex64(size: number): number {
  const tier = (shift: number, limit: number, base: number): number | undefined => {
    const shifted = Math.floor(size / 2 ** shift); // size >> shift
    return shifted <= limit ? base + shifted : undefined;
  };
  return tier(6, 48, 48) ?? tier(9, 20, 91) ?? tier(12, 10, 110) ?? tier(15, 4, 119)
    ?? tier(18, 2, 124) ?? LAST_BIN;
}

// Every large bin starts below 1 MiB (bin 126 at 512 KiB), and
// largebin_index_64 never decreases as the size grows, so a binary search
// over the chunk sizes MIN_LARGE_SIZE … 1 MiB finds each bin's first size.
const SEARCH_LIMIT = 1 << 20;
const firstSizes = new Map<number, number>();

function firstSizeOfLargebin(index: number): number {
  const cached = firstSizes.get(index);
  if (cached !== undefined) return cached;
  let lo = MIN_LARGE_SIZE / MALLOC_ALIGNMENT;
  let hi = SEARCH_LIMIT / MALLOC_ALIGNMENT;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (largebinIndex64(mid * MALLOC_ALIGNMENT) >= index) hi = mid;
    else lo = mid + 1;
  }
  const first = lo * MALLOC_ALIGNMENT;
  firstSizes.set(index, first);
  return first;
}
