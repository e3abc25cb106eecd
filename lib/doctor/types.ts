// What doctor() finds, as plain data: where the process's resident memory
// is, what each arena holds, what malloc_trim(0) would give back, the
// parameters in force and the advice those numbers warrant. Views read it.
import type { SnapshotInfo } from '../allocator/results';
import type { MallinfoTotals } from '../allocator/totals';
import type { Mallinfo } from '../stats';

/** What a row of the resident-memory table counts. */
export type RssKind =
  | 'main-heap' | 'arena-heaps' | 'mmapped-chunks' | 'code' | 'stacks' | 'other-anonymous' | 'library-data' | 'files' | 'other';

export interface RssRow {
  kind: RssKind;
  /** Thread arena heaps: the arena. */
  arena?: bigint;
  /** Regions of the map (or, for mmapped chunks, chunks) counted. */
  count: number;
  /** Bytes mapped. */
  size: number;
  /** Bytes resident. */
  rss: number;
}

export interface V8Heap {
  /** v8.getHeapSpaceStatistics(): each space's resident (physical) bytes. */
  spaces: { name: string; size: number; used: number; physical: number }[];
  physical: number;
}

/** Chunks glibc mapped on their own, found by their headers at the start of anonymous mappings. */
export interface MmappedChunks {
  found: number;
  /** Bytes mapped (prev_size + size of each, + 16 from 2.43: GlibcLayout.mmappedTail). */
  bytes: number;
  /** Bytes resident (pagemap). */
  resident: number;
  /** mp_.n_mmaps and mp_.mmapped_mem: what glibc counts. */
  nMmaps: number;
  mmappedMem: number;
  chunks: { address: bigint; size: number; resident: number }[];
  /**
   * Bytes of anonymous memory past a mapping that is no chunk that were not
   * searched for headers (more than the search reads: doctor/mmapped.ts).
   */
  unsearched: number;
  /** False when no search was made: this process's mallinfo2() counted, when the headers were read, as many chunks as were found. */
  searched: boolean;
  /** Bytes of each chunk's mapping past its size: 0 to 2.42, 16 from 2.43 (GlibcLayout.mmappedTail). */
  tail: number;
}

export interface ArenaDiagnosis {
  arena: bigint;
  kind: 'main' | 'thread';
  /** Thread arenas: their heaps; main_arena 0. */
  heaps: number;
  systemMem: number;
  /** system_mem − free: mallinfo's uordblks share (tcache chunks included). */
  inUse: number;
  /** Top + bins + fastbins: mallinfo's fordblks share. */
  free: number;
  top: number;
  /** Free bytes by list kind. */
  bins: { fast: number; unsorted: number; small: number; large: number };
  /** Chunks in all bins (fastbins included). */
  freeChunks: number;
  /** Bytes in tcaches: free to the program, in use to mallinfo. */
  tcache: number;
  /** The largest chunk in any bin (top not counted). */
  largestFree: number;
  /** free ÷ system_mem. */
  fragmentation: number;
  /** Resident bytes of its memory: [heap]'s from smaps, or its heaps' as the resident-memory table counts them (smaps, a line merged across a heap's bounds split by pagemap). */
  rss: number;
  /**
   * main_arena when non-contiguous (its NONCONTIGUOUS_BIT: sbrk failed, or
   * glibc.malloc.hugetlb made it fail on purpose, and glibc took memory
   * with mmap, which it lists nowhere): `bytes`, at least
   * what it holds outside [heap] (system_mem less [heap]'s size, less the
   * bytes of [heap] it never took: `foreignSbrk`), which
   * `rss` and the resident-memory table's main heap do not count (the
   * table counts it with other anonymous memory); `top`, the top chunk's
   * address when it lies there.
   */
  outsideHeap?: { bytes: number; top?: bigint };
  /**
   * main_arena: the bytes of [heap] it never took, where the program moved
   * the break itself (glibc's "foreign sbrk"): `below` its first chunk
   * (mp_.sbrk_base lies past [heap]'s start), `past` the double fencepost
   * that ends its chunks short of the break (no chunk follows), and of
   * them `resident` (pagemap, read before the snapshot), which `rss` and
   * the main heap row count. Absent where there are none.
   */
  foreignSbrk?: { below: number; past: number; resident: number };
  /** What malloc_trim(0) gives back from it: bytes, and of them resident. */
  trim: { bytes: number; resident: number };
}

export interface TrimRange {
  arena: bigint;
  /** Pages wholly inside a free chunk (madvised), or main_arena's top past the pad (sbrk). */
  source: 'free-chunk' | 'top';
  start: bigint;
  end: bigint;
  /** Resident bytes in it (pagemap), read right after the snapshot. */
  resident: number;
}

export interface TrimPrediction {
  pageSize: number;
  ranges: TrimRange[];
  /** Bytes of all ranges. */
  bytes: number;
  /** Resident bytes in them, read before the snapshot: the predicted RSS drop. */
  resident: number;
  /** Why main_arena's top gives nothing back, when it does not. */
  topReason?: string;
  /**
   * Whole pages of free chunks in huge pages that malloc_trim(0) madvises
   * but the kernel keeps (trimInHugePages): left out of `ranges`; their
   * bytes and resident bytes, where there are any.
   */
  hugePagesKept?: { bytes: number; resident: number; ranges: TrimRange[] };
}

/** The outcome of doctor({ trim: true }): malloc_trim(0) called, the RSS drop measured in the same native call. */
export interface TrimMeasured {
  /** malloc_trim's return value: something was released. */
  released: boolean;
  rssBefore: number;
  rssAfter: number;
  /** rssBefore − rssAfter (statm, both read in the native call that trimmed). */
  drop: number;
  /**
   * Resident bytes in the predicted ranges right before the trim, counted
   * from pagemap in the native call that trimmed (the snapshot's copy may
   * have made more resident than `TrimPrediction.resident`).
   */
  predicted: number;
  /** Predicted resident bytes still resident right after the trim (pagemap again, in the same call). */
  stillResident: number;
  /**
   * Resident bytes of the walked heaps outside the predicted ranges that the
   * trim released (pagemap of every heap right before and after, in the same
   * call): chunks freed after the snapshot, which the prediction could not see.
   */
  elsewhere: number;
  /** mallinfo2() fields that changed between the snapshot and the trim: another thread (or this one) used malloc. */
  changed: string[];
  /** TrimPrediction.hugePagesKept's resident bytes right before and right after the trim (pagemap, in the same call). */
  hugePagesKept?: { before: number; after: number };
}

export interface ParamsInForce {
  mmapThreshold: number;
  trimThreshold: number;
  topPad: number;
  arenaMax: number;
  arenaTest: number;
  nMmapsMax: number;
  noDynThreshold: boolean;
  /** mp_ as initialised in the libc file (its .data), or why it could not be read. */
  initial?: { mmapThreshold: number; trimThreshold: number; topPad: number; arenaMax: number };
  initialReason?: string;
  /** The mmap threshold rose since start: freeing a mmapped chunk raised it (no_dyn_threshold 0). */
  raised: boolean;
  /** In-use chunks in the arenas at least the initial threshold: at that threshold, those sysmalloc served would have been mapped on their own. */
  largeInHeap: { count: number; bytes: number };
  /**
   * Where glibc.malloc.hugetlb (2, or a huge page size) set mp_.hp_pagesize (2.35 on): that huge
   * page size; whether ptmalloc_init therefore made main_arena's sbrk fail,
   * so that it maps all its memory (hugePagesForceMmap); and whether
   * mmap_threshold is what ptmalloc_init set from it (the release does
   * (GlibcLayout.hugePagesThreshold), and it equals the page size, fixed).
   */
  hugePages?: { pageSize: number; mainArenaMapped: boolean; threshold: boolean };
}

export interface Advice {
  /** Which rule (see lib/doctor/advice.ts). */
  rule: 'arena-max' | 'mmap-threshold' | 'trim';
  text: string;
}

export interface DoctorData {
  pid: number;
  /** This process (in-process) or another (attach). */
  self: boolean;
  cmdline: string[];
  glibc: string;
  /** Whether this glibc has fastbins: false from 2.43 (GlibcLayout.fastbins). */
  fastbins: boolean;
  pageSize: number;
  rss: { total: number; rows: RssRow[] };
  /** In-process only: V8's own account of its heap, which lives in the anonymous memory. */
  v8?: V8Heap;
  threads: number;
  mmapped: MmappedChunks;
  arenas: ArenaDiagnosis[];
  /** The decode's totals, as mallinfo2 sums them. */
  totals: MallinfoTotals;
  /** In-process: mallinfo2() taken in the snapshot's native call. */
  mallinfo?: Mallinfo;
  params: ParamsInForce;
  trim: TrimPrediction;
  /** Sentences about the numbers, each with its figure. */
  findings: string[];
  advice: Advice[];
  /** Why some number may be short (lists that stopped, a walk that could not finish). */
  incomplete: string[];
  snapshot: SnapshotInfo;
  trimmed?: TrimMeasured;
}
