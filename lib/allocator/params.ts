// mp_ (struct malloc_par) field by field, as the running version lays it
// out, each with what it means.
import { HeapscopeError } from '../errors';
import { hugePagesForceMmap } from './arenas';
import { decodeFields, decodeMallocPar, FieldValue, MallocPar } from './decode';
import { AllocatorImage } from './image';
import { readBytes } from './memory-source';
import { GlobalMaxFastReading } from './max-fast';

/** One line each, for every field any release 2.28–2.43 has. */
export const MALLOC_PAR_MEANINGS: Readonly<Record<string, string>> = {
  trim_threshold: 'free gives the top of a heap back to the kernel once top is larger than this (M_TRIM_THRESHOLD)',
  top_pad: 'bytes added to every request for more memory from the kernel, so the heap grows less often (M_TOP_PAD)',
  mmap_threshold: 'a chunk of at least this many bytes that no free chunk and not the top chunk can serve gets a mapping of its own (M_MMAP_THRESHOLD; rises as such chunks are freed, unless set)',
  arena_test: 'arenas created before the limit is worked out from the number of CPUs (M_ARENA_TEST)',
  arena_max: 'the most arenas; 0 means 8 per CPU on 64-bit (M_ARENA_MAX)',
  thp_mode: "the transparent huge page mode malloc follows: 0 always, 1 madvise, 2 never, 3 not supported (its initializer: malloc asks the kernel only when glibc.malloc.hugetlb is 1; 0 sets never)",
  thp_pagesize: 'the transparent huge page size malloc madvises heaps for (glibc.malloc.hugetlb=1; from 2.43 only where thp_mode is madvise); 0 when off',
  hp_pagesize: 'the huge page size heaps and mmapped chunks are mapped with (glibc.malloc.hugetlb=2 or a size); 0 when off',
  hp_flags: 'the mmap flags for those huge pages (MAP_HUGETLB and the page size bits); 0 when off',
  n_mmaps: 'chunks mapped on their own right now',
  n_mmaps_max: 'the most chunks mapped on their own at once; past it, big requests come from the heap (M_MMAP_MAX)',
  max_n_mmaps: 'the most chunks there ever were mapped on their own at once',
  no_dyn_threshold: '1 once the mmap threshold was set through mallopt or a tunable: freeing no longer raises it',
  mmapped_mem: 'bytes in chunks mapped on their own right now',
  max_mmapped_mem: 'the most bytes there ever were in chunks mapped on their own',
  sbrk_base: "where main_arena's first memory from sbrk starts: the start of [heap], or further in where the program moved the break itself first (0 before malloc's first sbrk)",
  tcache_bins: 'tcache bins in use: one per chunk size up to tcache_max_bytes (glibc.malloc.tcache_max)',
  tcache_small_bins: 'tcache bins of single chunk sizes in use, up to tcache_max_bytes (glibc.malloc.tcache_max)',
  tcache_max_bytes: 'the largest request the tcache keeps',
  tcache_count: 'the most chunks one tcache bin holds (glibc.malloc.tcache_count)',
  tcache_unsorted_limit: 'chunks the unsorted bin scan may move into the tcache before it returns one; 0 is no limit (glibc.malloc.tcache_unsorted_limit)',
};

export interface MallocParamField {
  /** glibc's name, as gdb prints it. */
  name: string;
  /** size_t and pointers as bigints, ints as numbers. */
  value: FieldValue;
  meaning: string;
}

export interface MallocParams {
  /** Where mp_ is. */
  address: bigint;
  /** Every field of this version's struct malloc_par, in declaration order. */
  fields: MallocParamField[];
  /** The same, by camel-cased name. */
  values: MallocPar;
  /** global_max_fast, a separate variable: the largest chunk size fastbins take. */
  globalMaxFast: GlobalMaxFastReading;
  /**
   * glibc.malloc.hugetlb (2, or a huge page size) set mp_.hp_pagesize, with which ptmalloc_init
   * makes main_arena's sbrk fail on purpose: it maps all its memory, of huge
   * pages where it can (2.35 on; from 2.42 only where a huge page is at
   * most HEAP_MAX_SIZE). main_arena is then never contiguous.
   */
  mainArenaMapped: boolean;
}

/** mp_ at `address` in the image, with global_max_fast as read beside it. */
export function decodeParams(image: AllocatorImage, address: bigint, globalMaxFast: GlobalMaxFastReading): MallocParams {
  const struct = image.layout.mallocPar;
  const bytes = readBytes(image.memory, address, struct.size);
  if (typeof bytes === 'string') throw new HeapscopeError('ERR_NOT_IN_SNAPSHOT', `mp_ cannot be read: ${bytes}`);
  const raw = decodeFields(bytes, 0, struct);
  const fields = struct.fields.map((f) => ({ name: f.name, value: raw[f.name], meaning: MALLOC_PAR_MEANINGS[f.name] ?? '' }));
  const values = decodeMallocPar(bytes, 0, image.layout, address);
  return { address, fields, values, globalMaxFast, mainArenaMapped: hugePagesForceMmap(image.layout, values) };
}
