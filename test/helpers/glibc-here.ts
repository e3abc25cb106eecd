// This process's glibc as heapscope's layout table has it (the tests run on
// a release it knows), for the expectations that differ from 2.43 on: an
// mmapped chunk's size 16 bytes short of its mapping, no fastbins.
import { GlibcLayout, layoutFor, tcacheChunkSizes } from '../../lib/allocator/layouts';
import { glibcVersion } from '../../lib/stats';

export const HERE: GlibcLayout = layoutFor(glibcVersion());

/** Bytes of an mmapped chunk's mapping past its size: 0, or 16 from 2.43. */
export const MMAPPED_TAIL = HERE.mmappedTail;

/** The chunk sizes of a tcache_perthread_struct on this release (two candidates on 2.28 and 2.29). */
export const TCACHE_STRUCT_SIZES: readonly number[] = HERE.tcache.map((t) => t.chunkSize);

/** Bins of a tcache_perthread_struct: 64, or 76 from 2.42. */
export const TCACHE_BINS = HERE.tcache[0].bins;

/**
 * From 2.43 (2bf2188fae, "malloc: avoid need for tcache == NULL checks") a
 * thread's tcache is made at its first free, not its first malloc: the
 * main thread's is no longer the first chunk of [heap], and with
 * glibc.malloc.tcache_count=0 there is none.
 */
export const TCACHE_AT_FIRST_FREE = HERE.tcacheMadeAt === 'first-free';

/** Why a test of fastbins cannot run here (glibc 2.43 removed them), or undefined where there are fastbins. */
export const NO_FASTBINS: string | undefined = HERE.fastbins ? undefined : `glibc ${HERE.version} has no fastbins`;

/** Where a free chunk of a fast size goes when its tcache bin is full: a fastbin, or where this release puts a small chunk. */
export const PAST_FULL_TCACHE = HERE.fastbins ? 'fastbin' : HERE.freedSmall;

/** glibc's minor version: 36 for 2.36. */
export const MINOR = Number(HERE.version.split('.')[1]);

/**
 * Where the rest of an old heap's top can go when sysmalloc frees it: to
 * 2.41 through _int_free, which caches it (a fastbin once its bin is
 * full); from 2.42 through _int_free_chunk, which skips the tcache (a
 * fastbin on 2.42, the chunk's small bin from 2.43).
 */
export const OLD_TOP_FREED_TO: readonly string[] = MINOR >= 42 ? [PAST_FULL_TCACHE] : ['tcache', 'fastbin'];

/**
 * What mp_.tcache_max_bytes holds for glibc.malloc.tcache_max=`request`: the
 * request to 2.41, its chunk size in 2.42, one more from 2.43
 * (do_set_tcache_max).
 */
export function tcacheMaxBytesFor(request: number): number {
  const chunk = Math.max(32, Math.floor((request + 8 + 15) / 16) * 16);
  return MINOR >= 43 ? chunk + 1 : MINOR >= 42 ? chunk : request;
}

/** Every size a tcache struct's chunk can have (tcacheChunkSizes). */
export const TCACHE_STRUCT_CHUNKS: readonly number[] = HERE.tcache.flatMap((t) => tcacheChunkSizes(HERE, t));
