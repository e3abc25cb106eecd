// malloc's structs as glibc declares them, one variant per change, each
// transcribed from malloc/malloc.c and malloc/arena.c at the release tags
// (layouts.ts says which release uses which). Field order and types are the
// source's; offsets come from cStruct. INTERNAL_SIZE_T is size_t, mchunkptr,
// mfastbinptr and mstate are pointers, __libc_lock_t is int (nptl's
// libc-lockP.h), on every release read.
import { NBINS } from '../size-classes';
import { cStruct, FieldDecl, StructLayout } from './struct-layout';

/** NFASTBINS = fastbin_index(request2size(MAX_FAST_SIZE)) + 1 = (176 >> 4) − 2 + 1 on x86_64. */
export const NFASTBINS = 10;
/** BINMAPSIZE = NBINS / BITSPERMAP (32). */
export const BINMAPSIZE = 4;

const STATE_BINS: FieldDecl[] = [
  ['top', 'pointer'],
  ['last_remainder', 'pointer'],
  ['bins', 'pointer', NBINS * 2 - 2],
  ['binmap', 'unsigned int', BINMAPSIZE],
  ['next', 'pointer'],
  ['next_free', 'pointer'],
  ['attached_threads', 'size_t'],
  ['system_mem', 'size_t'],
  ['max_system_mem', 'size_t'],
];

/**
 * struct malloc_state, unchanged from 2.27 to 2.42. have_fastchunks is an int
 * because not every target has atomic bools (e956075a5a, 2.27, turned the
 * FASTCHUNKS_BIT flag into this field for relaxed atomics).
 */
export const MALLOC_STATE: StructLayout = cStruct('struct malloc_state', [
  ['mutex', 'int'],
  ['flags', 'int'],
  ['have_fastchunks', 'int'],
  ['fastbinsY', 'pointer', NFASTBINS],
  ...STATE_BINS,
]);
/**
 * 2.43: bb5a4f5295 ("malloc: Remove fastbin infrastructure") dropped
 * have_fastchunks and fastbinsY, once the tcache had taken over what
 * fastbins were for (a chunk the tcache refuses now goes to the bins
 * straight away, and malloc_consolidate is gone with them).
 */
export const MALLOC_STATE_2_43: StructLayout = cStruct('struct malloc_state', [
  ['mutex', 'int'],
  ['flags', 'int'],
  ...STATE_BINS,
]);

const PAR_HEAD: FieldDecl[] = [
  ['trim_threshold', 'size_t'], // unsigned long
  ['top_pad', 'size_t'],
  ['mmap_threshold', 'size_t'],
  ['arena_test', 'size_t'],
  ['arena_max', 'size_t'],
];
// Huge page support (5f6d8d97c6 "Add madvise support for Transparent Huge
// Pages", 98d5fcb8d0 "Add Huge Page support for mmap", both 2.35) needs the
// page size and mmap flags that the glibc.malloc.hugetlb tunable chose.
const PAR_HUGE_PAGES: FieldDecl[] = [
  ['thp_pagesize', 'size_t'],
  ['hp_pagesize', 'size_t'],
  ['hp_flags', 'int'],
];
const PAR_MMAP: FieldDecl[] = [
  ['n_mmaps', 'int'],
  ['n_mmaps_max', 'int'],
  ['max_n_mmaps', 'int'],
  ['no_dyn_threshold', 'int'],
  ['mmapped_mem', 'size_t'],
  ['max_mmapped_mem', 'size_t'],
  ['sbrk_base', 'pointer'],
];
const PAR_TCACHE = (bins: string): FieldDecl[] => [
  [bins, 'size_t'],
  ['tcache_max_bytes', 'size_t'],
  ['tcache_count', 'size_t'],
  ['tcache_unsorted_limit', 'size_t'],
];

/** struct malloc_par, 2.26 to 2.34. */
export const MALLOC_PAR_2_26: StructLayout = cStruct('struct malloc_par', [...PAR_HEAD, ...PAR_MMAP, ...PAR_TCACHE('tcache_bins')]);
/**
 * 2.35 to 2.41: the huge page fields after arena_max. In 2.35 to 2.37 they
 * are under `#if HAVE_TUNABLES`, which every distribution's build has (it is
 * configure's default); 33237fe83d (2.38) made tunables unconditional.
 */
export const MALLOC_PAR_2_35: StructLayout = cStruct('struct malloc_par', [
  ...PAR_HEAD, ...PAR_HUGE_PAGES, ...PAR_MMAP, ...PAR_TCACHE('tcache_bins'),
]);
/**
 * 2.42: cbfd798810 ("add tcache support for large chunk caching") renamed
 * tcache_bins to tcache_small_bins, as the large bins past it are not counted
 * there. Same offsets as 2.35.
 */
export const MALLOC_PAR_2_42: StructLayout = cStruct('struct malloc_par', [
  ...PAR_HEAD, ...PAR_HUGE_PAGES, ...PAR_MMAP, ...PAR_TCACHE('tcache_small_bins'),
]);
/**
 * 2.43: 9097cbf5d8 ("malloc: Enable THP always support on hugetlb
 * tunable") keeps the system's transparent huge page mode (an enum, so an
 * int and then a 4-byte hole) before thp_pagesize, so that malloc skips
 * madvise where the kernel's mode makes it useless.
 */
export const MALLOC_PAR_2_43: StructLayout = cStruct('struct malloc_par', [
  ...PAR_HEAD, ['thp_mode', 'int'], ...PAR_HUGE_PAGES, ...PAR_MMAP, ...PAR_TCACHE('tcache_small_bins'),
]);

// pad keeps sizeof (heap_info) + 2 * SIZE_SZ a multiple of MALLOC_ALIGNMENT:
// -6 * SIZE_SZ & 15 = 0 bytes, later -3 * SIZE_SZ & 15 = 8 bytes. A
// zero-length array is a GNU C extension gdb prints as `char pad[0]`.
const HEAP_HEAD: FieldDecl[] = [
  ['ar_ptr', 'pointer'],
  ['prev', 'pointer'],
  ['size', 'size_t'],
  ['mprotect_size', 'size_t'],
];
/** heap_info (arena.c), to 2.34. */
export const HEAP_INFO_2_26: StructLayout = cStruct('heap_info', [...HEAP_HEAD, ['pad', 'char', 0]]);
/**
 * 2.35 on: c1beb51d08 ("Add Huge Page support to arenas") records the page
 * size a heap was mapped with, since heaps can use huge pages and shrinking
 * must round to them.
 */
export const HEAP_INFO_2_35: StructLayout = cStruct('heap_info', [...HEAP_HEAD, ['pagesize', 'size_t'], ['pad', 'char', 8]]);

/** tcache_entry of the 2.28 release: a bare list link. */
export const TCACHE_ENTRY_2_26: StructLayout = cStruct('struct tcache_entry', [['next', 'pointer']]);
/**
 * From bcdaad21d4 ("tcache double free check", 2.29; backported to the
 * 2.28 branch as b8dd0f4278): `key` marks a chunk as cached so free can
 * catch a double free cheaply. It held a pointer to the thread's
 * tcache_perthread_struct until fc859c3048 ("Harden tcache double-free
 * check", 2.34) made it a random process-wide tcache_key, because the old
 * key leaked a heap address and was predictable. The type changed from
 * pointer to uintptr_t; the layout did not.
 */
export const TCACHE_ENTRY_2_29: StructLayout = cStruct('struct tcache_entry', [['next', 'pointer'], ['key', 'pointer']]);

/** tcache_perthread_struct, with one count per bin. */
export interface TcacheLayout {
  struct: StructLayout;
  /** What glibc calls the per-bin counter array. */
  countsField: 'counts' | 'num_slots';
  /**
   * `entries`: how many chunks the bin holds. `free-slots`: how many more it
   * takes (7e10e30e64, "Count tcache entries downwards", 2.42: deciding
   * whether free may cache a chunk then reads one variable, not two). 2.42's
   * tcache_init sets every bin to mp_.tcache_count, so the chunks held are
   * tcache_count minus the slots.
   */
  counts: 'entries' | 'free-slots';
  /** TCACHE_MAX_BINS. */
  bins: number;
  /** Bins indexed by chunk size (32 + 16 × i); the rest (2.42) hold ranges of large sizes. */
  smallBins: number;
  /** The chunk that malloc hands tcache_init for the struct: request2size(sizeof). */
  chunkSize: number;
}

function tcache(countType: 'char' | 'uint16_t', countsField: 'counts' | 'num_slots', bins: number): TcacheLayout {
  const struct = cStruct('struct tcache_perthread_struct', [[countsField, countType, bins], ['entries', 'pointer', bins]]);
  const chunkSize = Math.ceil((struct.size + 8) / 16) * 16;
  return { struct, countsField, counts: countsField === 'counts' ? 'entries' : 'free-slots', bins, smallBins: 64, chunkSize };
}

/** char counts[64]: 2.26 to 2.29 as released (a 0x250 chunk). */
export const TCACHE_CHAR_COUNTS = tcache('char', 'counts', 64);
/**
 * uint16_t counts[64] (a 0x290 chunk): 1f50f2ad85 ("Small tcache
 * improvements", 2.30) widened the counts so glibc.malloc.tcache_count can
 * exceed 127. The 2.28 and 2.29 release branches took it too (f88c59f465,
 * 0ad788face), so a "2.28" or "2.29" build can have either struct.
 */
export const TCACHE_U16_COUNTS = tcache('uint16_t', 'counts', 64);
/**
 * 2.42: cbfd798810 added 12 bins for chunks up to 4 MiB (TCACHE_LARGE_BINS)
 * and 7e10e30e64 turned counts into num_slots (a 0x300 chunk).
 */
export const TCACHE_2_42 = tcache('uint16_t', 'num_slots', 76);
