// Where a request lands in a glibc arena, on one release: the size-class
// macros (size-classes.ts) and what that release's malloc has (layouts.ts:
// from 2.43, no fastbins).
import { layoutFor } from './allocator/layouts';
import { binIndex, fastbinIndex, MIN_LARGE_SIZE, requestToChunkSize, tcacheIndex, usableSizeOf } from './size-classes';
import { glibcVersion } from './stats';
import { Size } from './validate';

/** Where a request lands in a glibc arena, as `sizeClass` predicts it. */
export interface SizeClass {
  request: number;
  /** The glibc release the prediction is for, e.g. `2.36`. */
  glibc: string;
  /** `request2size(request)`; a free chunk up to 16 bytes larger may be handed out whole. */
  chunkSize: number;
  /** `chunkSize − SIZE_SZ`: what malloc_usable_size reports for that chunk. */
  usableSize: number;
  /** `csize2tidx`, when the chunk size is tcached. */
  tcacheIndex?: number;
  /** `fastbin_index`, when the release has fastbins (to 2.42) and the chunk is at most the default global_max_fast (0x80). */
  fastbinIndex?: number;
  /** `bin_index`: where the chunk is sorted once it is free and neither tcached nor in a fastbin. */
  binIndex: number;
  binKind: 'small' | 'large';
}

/**
 * The size class of `request` for a chunk served from an arena heap, on
 * glibc `glibc` (a release heapscope knows the layout of, 2.28 to 2.43;
 * this process's by default, so that on a release it does not know the
 * call is refused with `ERR_UNKNOWN_GLIBC_LAYOUT` rather than guessed).
 * Requests at or above the mmap threshold (128 KiB, growing dynamically)
 * may get an mmapped chunk instead: see `mmappedChunkSize`.
 */
export function sizeClass(request: Size, glibc: string = glibcVersion()): SizeClass {
  const chunkSize = requestToChunkSize(request);
  const { version, fastbins } = layoutFor(glibc);
  const result: SizeClass = {
    // Validated above: a whole number below 2^53, exact as a number.
    request: Number(request),
    glibc: version,
    chunkSize,
    usableSize: usableSizeOf(chunkSize),
    binIndex: binIndex(chunkSize),
    binKind: chunkSize < MIN_LARGE_SIZE ? 'small' : 'large',
  };
  const tcache = tcacheIndex(chunkSize);
  if (tcache !== undefined) result.tcacheIndex = tcache;
  const fast = fastbins ? fastbinIndex(chunkSize) : undefined;
  if (fast !== undefined) result.fastbinIndex = fast;
  return result;
}
