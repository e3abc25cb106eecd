// A region of the process map and the kinds a region is classified into
// (how: classify.ts).
import { InspectContext, MimeBundle, presenter } from '../presenters';

/**
 * What a region holds. The kernel only says "file", "anonymous" or a bracketed
 * name; the rest is inferred from permissions and neighbours, first match wins:
 *
 * | kind             | how it is recognised                                                           |
 * |------------------|--------------------------------------------------------------------------------|
 * | `heap`           | `[heap]`: main_arena's brk heap (ends at the program break)                    |
 * | `stack`          | `[stack]` (and `[stack:tid]`, the thread stacks of Linux 3.4 to 4.4)           |
 * | `vdso`           | `[vdso]`                                                                       |
 * | `vvar`           | `[vvar]`, `[vvar_vclock]`                                                      |
 * | `vsyscall`       | `[vsyscall]`                                                                   |
 * | `arena-heap`     | anonymous `rw-p` starting on a 64 MiB (HEAP_MAX_SIZE) boundary, either exactly |
 * |                  | 64 MiB long or followed by adjacent anonymous `---p` regions up to the next    |
 * |                  | 64 MiB boundary: a glibc thread arena's heap_info, grown part                  |
 * | `arena-reserved` | those trailing `---p` regions: the arena heap's room to grow                   |
 * | `text`           | executable file mapping (its path is then an ELF object)                       |
 * | `data`           | writable private file mapping                                                  |
 * | `rodata`         | read-only file mapping of a file that also has a `text` mapping (incl. RELRO)  |
 * | `bss`            | anonymous `rw-p` whose start is the end of an ELF object's last mapping        |
 * | `reserved`       | any other mapping with no access (`---p`): guard pages, V8 reservations, the   |
 * |                  | holes between an ELF's segments                                                |
 * | `file`           | any other file mapping: data files, /dev/shm, `/memfd:…`, `/dev/zero (deleted)`|
 * | `anonymous`      | any other anonymous mapping, named (`[anon:…]`) or not: mmapped chunks, thread |
 * |                  | stacks, V8 pages, JIT code; and `/anon_hugepage`, anonymous memory of huge     |
 * |                  | pages (MAP_HUGETLB), which the kernel names after a file it made and unlinked  |
 *
 * Limits of the inference:
 * - `bss`: only the part of .bss past the data segment's last file page gets an
 *   anonymous mapping; the rest lives zero-filled in the `data` mapping (and a
 *   .bss that fits there has no `bss` region at all). The kernel also merges
 *   the bss with an anonymous `rw-p` neighbour above it, and an unrelated
 *   mapping can sit right above a library whose .bss needs no pages. From text
 *   alone ({@link parseMaps}) that is indistinguishable; {@link maps} checks
 *   the object's program headers (the dynamic loader's, or read in memory for
 *   an object it did not load) and calls such a region `anonymous`.
 * - `arena-heap` assumes the default HEAP_MAX_SIZE; with the
 *   `glibc.malloc.hugetlb` tunable, arena heaps are smaller and show as
 *   `anonymous` + `reserved`.
 */
export type RegionKind =
  | 'text'
  | 'rodata'
  | 'data'
  | 'bss'
  | 'heap'
  | 'arena-heap'
  | 'arena-reserved'
  | 'stack'
  | 'vdso'
  | 'vvar'
  | 'vsyscall'
  | 'reserved'
  | 'anonymous'
  | 'file';

/**
 * Addresses (`start`, `end`) are bigints: user addresses reach 2^47 (2^56
 * with 5-level paging) and vsyscall sits at 0xffffffffff600000, past 2^53.
 * Sizes, offsets and resident byte counts are numbers.
 */
export interface MemoryRegion {
  start: bigint;
  /** Exclusive. */
  end: bigint;
  /**
   * `end - start` in bytes. Exact below 2^53 (8 PiB), which covers every
   * real region: user space is 2^47 bytes (2^56 with 5-level paging, and
   * then only for mappings asked for above 2^47).
   */
  size: number;
  /** As the kernel prints it, e.g. `r-xp`. */
  perms: string;
  readable: boolean;
  writable: boolean;
  executable: boolean;
  /** `s` rather than `p`: writes reach the file or other processes. */
  shared: boolean;
  /**
   * Offset into the file in bytes (0 for anonymous mappings); exact below
   * 2^53, which covers every file and device offset but one into a sparse
   * file of more than 8 PiB.
   */
  offset: number;
  /** `major:minor` in hex, as printed. */
  dev: string;
  /** 0 for anonymous mappings; exact below 2^53. */
  inode: number;
  /**
   * The file, or the kernel's bracketed name (`[heap]`, `[anon:name]`) as
   * printed; '' for an unnamed anonymous mapping. Without ` (deleted)`.
   */
  path: string;
  /** The path ended with ` (deleted)`: the file was unlinked (always so for memfds). */
  deleted: boolean;
  /** The name of an `[anon:name]` (or `[anon_shmem:name]`) mapping, set with PR_SET_VMA. */
  name?: string;
  kind: RegionKind;
  /** For ELF segments and their bss: the ELF file they belong to. */
  object?: string;
  /**
   * Resident bytes; only with `{ rss: true }`. Huge pages (hugetlbfs:
   * smaps' `Private_Hugetlb` and `Shared_Hugetlb`) count, which smaps' own
   * `Rss`, and so `ps`, leave out.
   */
  rss?: number;
  /** Proportional set size: resident bytes divided among the processes sharing them (huge pages not counted, as smaps gives it). */
  pss?: number;
  /** Resident bytes that are anonymous (including copy-on-write copies of file pages). */
  anonymous?: number;
}

/** The kinds that are private anonymous memory when not shared. */
const ANONYMOUS_KINDS = new Set<RegionKind>(['heap', 'arena-heap', 'bss', 'stack', 'anonymous']);

/** How the map names anonymous memory of huge pages (MAP_HUGETLB; glibc.malloc.hugetlb maps chunks and main_arena's memory so). */
export const HUGE_PAGES_PATH = '/anon_hugepage';

/**
 * Whether `region` is readable private anonymous memory, where a page never
 * touched (neither present nor swapped in /proc/PID/pagemap) reads as zeros:
 * a copy of it may leave such pages zero instead of reading them, which would
 * make them resident (a huge page's whole 2 MiB, taken from the pool).
 */
export function untouchedReadsZero(region: MemoryRegion): boolean {
  return region.readable && !region.shared && (region.inode === 0 || region.path === HUGE_PAGES_PATH) && ANONYMOUS_KINDS.has(region.kind);
}

/** How a region and a list of them show themselves; installed by the view layer. */
export const regionViews = presenter<{
  inspect(region: MemoryRegion, depth: number, options?: InspectContext): string;
  bundle(regions: readonly MemoryRegion[]): MimeBundle;
}>('MemoryRegion');
