// Which of malloc's struct layouts each glibc release has on x86_64, read from
// glibc's source at the tags glibc-2.28 … glibc-2.42 (and the release
// branches, which backported layout changes only to 2.28 and 2.29), and for
// 2.43 from glibc's tree just before its release (2026-01-20), checked
// against Debian's 2.43 with gdb. Outside that range nothing is known, so
// nothing is guessed.
//
// Constant over the whole range on x86_64, and so not in the table:
// MALLOC_ALIGNMENT 16 (sysdeps/generic/malloc-alignment.h: the larger of
// 2 * SIZE_SZ and alignof (long double)), SIZE_SZ 8, NBINS 128, NFASTBINS 10
// (while there are fastbins), BINMAPSIZE 4, HEAP_MAX_SIZE 64 MiB
// (2 * DEFAULT_MMAP_THRESHOLD_MAX).
//
// Assumed of the build, as every distribution configures glibc: tunables
// enabled (the 2.35 to 2.37 huge page fields of malloc_par depend on it) and
// the tcache enabled. A build without them has other offsets; the locator's
// checks then find no main_arena or mp_ rather than a wrong one.
import { HeapscopeError, typeError } from '../errors';
import { describe } from '../validate';
import { StructLayout } from './struct-layout';
import {
  HEAP_INFO_2_26, HEAP_INFO_2_35, MALLOC_PAR_2_26, MALLOC_PAR_2_35, MALLOC_PAR_2_42, MALLOC_PAR_2_43, MALLOC_STATE,
  MALLOC_STATE_2_43, TCACHE_2_42,
  TCACHE_CHAR_COUNTS, TCACHE_ENTRY_2_26, TCACHE_ENTRY_2_29, TCACHE_U16_COUNTS, TcacheLayout,
} from './structs';

/** What a tcache_entry's key holds. */
export type TcacheKey =
  /** The 2.28 release has no key; builds of its branch from late 2018 on have the tcache pointer. */
  | 'absent-or-tcache-pointer'
  /** The address of the thread's tcache_perthread_struct. */
  | 'tcache-pointer'
  /** tcache_key, a random word per process. */
  | 'random';

export interface GlibcLayout {
  /** The version asked for, e.g. `2.36`. */
  version: string;
  /** The releases that share this layout, e.g. `2.35–2.36`. */
  releases: string;
  mallocState: StructLayout;
  mallocPar: StructLayout;
  heapInfo: StructLayout;
  /**
   * tcache_perthread_struct: one layout, or for 2.28 and 2.29 two, told apart
   * by the size of the chunk that holds the struct (see tcacheLayoutFor).
   */
  tcache: readonly TcacheLayout[];
  tcacheEntry: StructLayout;
  tcacheKey: TcacheKey;
  /**
   * Whether arenas have fastbins (fastbinsY, have_fastchunks, malloc_consolidate):
   * bb5a4f5295 ("malloc: Remove fastbin infrastructure", 2.43) removed them.
   */
  fastbins: boolean;
  /**
   * global_max_fast's type. 15a94e6668 (2.37) made it a uint8_t, as
   * MAX_FAST_SIZE (160) fits, so that overwriting it can no longer push
   * large chunks into fastbins. Gone with the fastbins in 2.43, where
   * mallopt(M_MXFAST) does nothing.
   */
  globalMaxFast: 'size_t' | 'uint8_t' | 'none';
  /**
   * Bytes of an mmapped chunk's mapping past chunksize(p): 0 to 2.42;
   * CHUNK_HDR_SZ (16) from 614cfd0f8a ("malloc: Change mmap chunk layout",
   * 2.43), which gives it a next chunk's header like a heap chunk's, so that
   * the tcache can hold it. The mapping is then prev_size + size + this.
   */
  mmappedTail: 0 | 16;
  /**
   * Fastbin and tcache `next` links are stored as PROTECT_PTR(&next, next)
   * (a1a486d70e, "Add Safe-Linking to fastbins and tcache", 2.32): a
   * corrupted link then rarely points anywhere valid. List heads in
   * malloc_state and tcache_perthread_struct stay plain.
   */
  safeLinking: boolean;
  /** The largest tcache_max_bytes glibc accepts: MAX_TCACHE_SIZE (1032), or under 4 MiB with 2.42's large bins. */
  maxTcacheMaxBytes: number;
  /**
   * Where free puts a chunk that no tcache or fastbin takes and that does
   * not border top: the unsorted bin; from 2.41 one in small-bin range goes
   * straight into its small bin (_int_free_create_chunk: "so they don't
   * pollute the unsorted bin"; not in 2.40's source, in 2.41's), only a
   * large one to the unsorted bin.
   */
  freedSmall: 'unsorted' | 'smallbin';
  /**
   * When a thread's tcache_perthread_struct is made: at its first malloc, or
   * from 2bf2188fae ("malloc: avoid need for tcache == NULL checks", 2.43) at
   * its first free (until then `tcache` points at a static inactive one):
   * the main thread's is then no longer [heap]'s first chunk.
   */
  tcacheMadeAt: 'first-malloc' | 'first-free';
  /**
   * heap_max_size (), what heap_for_ptr rounds a thread arena's chunk down
   * to: HEAP_MAX_SIZE (64 MiB) always, or, from c1beb51d08 ("malloc: Add
   * Huge Page support to arenas", 2.35) to 2.41, four huge pages where
   * glibc.malloc.hugetlb set mp_.hp_pagesize. 9f551e28a7 ("malloc: Improve
   * arena_for_chunk()", 2.42) made it HEAP_MAX_SIZE again, and from then on
   * glibc takes huge pages only where one is at most that.
   */
  heapMax: 'fixed' | 'four-huge-pages';
  /**
   * Whether ptmalloc_init, where glibc.malloc.hugetlb makes main_arena map
   * its memory, also sets mmap_threshold to the huge page size (unless
   * glibc.malloc.mmap_threshold is given): from bc6d79f4ae ("malloc:
   * Improve MAP_HUGETLB with glibc.malloc.hugetlb=2", 2.39).
   */
  hugePagesThreshold: boolean;
}

/** A table row: the minor releases `from`..`to` and what they share. */
type Row = { from: number; to: number } & Omit<GlibcLayout, 'version' | 'releases'>;

const SMALL = 1032;
const LARGE = (4 << 20) - 1;
const BOTH = [TCACHE_CHAR_COUNTS, TCACHE_U16_COUNTS] as const;

/** What 2.28 to 2.42 share. */
const TO_2_42 = { mallocState: MALLOC_STATE, fastbins: true, mmappedTail: 0, tcacheMadeAt: 'first-malloc', heapMax: 'fixed', hugePagesThreshold: false } as const;

/** Minor versions of glibc 2.x, each row a range with one layout (and one freedSmall). */
const TABLE: readonly Row[] = [
  { ...TO_2_42, from: 28, to: 28, mallocPar: MALLOC_PAR_2_26, heapInfo: HEAP_INFO_2_26, tcache: BOTH, tcacheEntry: TCACHE_ENTRY_2_26, tcacheKey: 'absent-or-tcache-pointer', globalMaxFast: 'size_t', safeLinking: false, maxTcacheMaxBytes: SMALL, freedSmall: 'unsorted' },
  { ...TO_2_42, from: 29, to: 29, mallocPar: MALLOC_PAR_2_26, heapInfo: HEAP_INFO_2_26, tcache: BOTH, tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'tcache-pointer', globalMaxFast: 'size_t', safeLinking: false, maxTcacheMaxBytes: SMALL, freedSmall: 'unsorted' },
  { ...TO_2_42, from: 30, to: 31, mallocPar: MALLOC_PAR_2_26, heapInfo: HEAP_INFO_2_26, tcache: [TCACHE_U16_COUNTS], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'tcache-pointer', globalMaxFast: 'size_t', safeLinking: false, maxTcacheMaxBytes: SMALL, freedSmall: 'unsorted' },
  { ...TO_2_42, from: 32, to: 33, mallocPar: MALLOC_PAR_2_26, heapInfo: HEAP_INFO_2_26, tcache: [TCACHE_U16_COUNTS], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'tcache-pointer', globalMaxFast: 'size_t', safeLinking: true, maxTcacheMaxBytes: SMALL, freedSmall: 'unsorted' },
  { ...TO_2_42, from: 34, to: 34, mallocPar: MALLOC_PAR_2_26, heapInfo: HEAP_INFO_2_26, tcache: [TCACHE_U16_COUNTS], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'random', globalMaxFast: 'size_t', safeLinking: true, maxTcacheMaxBytes: SMALL, freedSmall: 'unsorted' },
  { ...TO_2_42, heapMax: 'four-huge-pages', from: 35, to: 36, mallocPar: MALLOC_PAR_2_35, heapInfo: HEAP_INFO_2_35, tcache: [TCACHE_U16_COUNTS], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'random', globalMaxFast: 'size_t', safeLinking: true, maxTcacheMaxBytes: SMALL, freedSmall: 'unsorted' },
  { ...TO_2_42, heapMax: 'four-huge-pages', from: 37, to: 38, mallocPar: MALLOC_PAR_2_35, heapInfo: HEAP_INFO_2_35, tcache: [TCACHE_U16_COUNTS], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'random', globalMaxFast: 'uint8_t', safeLinking: true, maxTcacheMaxBytes: SMALL, freedSmall: 'unsorted' },
  { ...TO_2_42, heapMax: 'four-huge-pages', hugePagesThreshold: true, from: 39, to: 40, mallocPar: MALLOC_PAR_2_35, heapInfo: HEAP_INFO_2_35, tcache: [TCACHE_U16_COUNTS], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'random', globalMaxFast: 'uint8_t', safeLinking: true, maxTcacheMaxBytes: SMALL, freedSmall: 'unsorted' },
  { ...TO_2_42, heapMax: 'four-huge-pages', hugePagesThreshold: true, from: 41, to: 41, mallocPar: MALLOC_PAR_2_35, heapInfo: HEAP_INFO_2_35, tcache: [TCACHE_U16_COUNTS], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'random', globalMaxFast: 'uint8_t', safeLinking: true, maxTcacheMaxBytes: SMALL, freedSmall: 'smallbin' },
  { ...TO_2_42, hugePagesThreshold: true, from: 42, to: 42, mallocPar: MALLOC_PAR_2_42, heapInfo: HEAP_INFO_2_35, tcache: [TCACHE_2_42], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'random', globalMaxFast: 'uint8_t', safeLinking: true, maxTcacheMaxBytes: LARGE, freedSmall: 'smallbin' },
  { from: 43, to: 43, mallocState: MALLOC_STATE_2_43, fastbins: false, mmappedTail: 16, tcacheMadeAt: 'first-free', heapMax: 'fixed', hugePagesThreshold: true, mallocPar: MALLOC_PAR_2_43, heapInfo: HEAP_INFO_2_35, tcache: [TCACHE_2_42], tcacheEntry: TCACHE_ENTRY_2_29, tcacheKey: 'random', globalMaxFast: 'none', safeLinking: true, maxTcacheMaxBytes: LARGE, freedSmall: 'smallbin' },
];

/** The releases whose layouts were read, oldest first: `2.28` … `2.43`. */
export const KNOWN_GLIBC_VERSIONS: readonly string[] = TABLE.flatMap((row) =>
  Array.from({ length: row.to - row.from + 1 }, (_, i) => `2.${row.from + i}`));

const RANGE = `${KNOWN_GLIBC_VERSIONS[0]} to ${KNOWN_GLIBC_VERSIONS[KNOWN_GLIBC_VERSIONS.length - 1]}`;

/**
 * The layout of malloc's state in glibc `version` on x86_64, as
 * gnu_get_libc_version() prints it (`2.36`). A release outside 2.28 to 2.43,
 * or a development snapshot such as `2.43.9000`, throws
 * ERR_UNKNOWN_GLIBC_LAYOUT: its structs were not read.
 */
export function layoutFor(version: string): GlibcLayout {
  if (typeof version !== 'string') throw typeError(`version must be a string, got ${describe(version)}`);
  const match = /^2\.(\d{1,3})$/.exec(version);
  const row = match === null ? undefined : TABLE.find((r) => r.from <= Number(match[1]) && Number(match[1]) <= r.to);
  if (row === undefined) {
    throw new HeapscopeError('ERR_UNKNOWN_GLIBC_LAYOUT', `glibc ${JSON.stringify(version)}: malloc's layout is known for releases ${RANGE} only`);
  }
  const { from, to, ...rest } = row;
  return { version, releases: from === to ? `2.${from}` : `2.${from}–2.${to}`, ...rest };
}

/**
 * The sizes the chunk holding a tcache_perthread_struct of layout `t` can
 * have: request2size(sizeof) (`t.chunkSize`), or 16 bytes more, which malloc
 * hands out whole when the remainder would be below MINSIZE. From
 * 2bf2188fae (2.43, the commit that makes the struct at the first free),
 * tcache_init(av), called inside _int_malloc, passes _int_malloc
 * request2size(sizeof) as the request, which it converts again: 16 bytes
 * more, and 16 more again handed out whole (a 0x320 chunk for 2.43's 0x300:
 * a Node.js worker's tcache on 2.43 lay in one in 32 of 40 walks by hand).
 */
export function tcacheChunkSizes(layout: GlibcLayout, t: TcacheLayout): number[] {
  return layout.tcacheMadeAt === 'first-free' ? [t.chunkSize, t.chunkSize + 16, t.chunkSize + 32] : [t.chunkSize, t.chunkSize + 16];
}

/**
 * The tcache_perthread_struct layout whose chunk has size `chunkSize` (the
 * first chunk of a thread's arena heap, or of [heap] for the main thread;
 * see tcacheChunkSizes). Throws ERR_UNKNOWN_GLIBC_LAYOUT when no candidate
 * of this version fits.
 */
export function tcacheLayoutFor(layout: GlibcLayout, chunkSize: number): TcacheLayout {
  const fit = layout.tcache.find((t) => tcacheChunkSizes(layout, t).includes(chunkSize));
  if (fit === undefined) {
    const sizes = layout.tcache.flatMap((t) => tcacheChunkSizes(layout, t)).map((n) => `0x${n.toString(16)}`).join(', ');
    throw new HeapscopeError('ERR_UNKNOWN_GLIBC_LAYOUT',
      `glibc ${layout.version}: a tcache_perthread_struct chunk of 0x${chunkSize.toString(16)} bytes matches no known layout (${sizes})`);
  }
  return fit;
}
