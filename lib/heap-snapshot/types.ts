// A heap snapshot as plain data: the decoded state of one process's
// allocator at one moment (no raw bytes), in the versioned format that
// `heapscope snapshot` writes and `heapscope diff` reads. Every figure is
// taken from the doctor's diagnosis and the chunk placement of one copy.
import type { SnapshotInfo } from '../allocator/results';
import type { MallinfoTotals } from '../allocator/totals';
import type { ParamsInForce, RssRow } from '../doctor/types';
import type { Mallinfo } from '../stats';

export const SNAPSHOT_FORMAT = 'heapscope-snapshot';
/** The format's version: a reader refuses a newer one (ERR_SNAPSHOT_VERSION). */
export const SNAPSHOT_VERSION = 1;

/** Chunks, and their bytes (chunk sizes, headers included). */
export interface Counted {
  count: number;
  bytes: number;
}

/** Where a free chunk sits; tcache chunks are free to the program and in use to mallinfo2. */
export const FREE_PLACES = ['tcache', 'fastbin', 'unsorted', 'smallbin', 'largebin'] as const;
export type FreePlace = (typeof FREE_PLACES)[number];

/**
 * One size class of one arena: chunk sizes `min` … `max` (one size below
 * 1024 bytes, as a small bin holds; a large bin's range above, `max` null
 * for the last, unbounded one). Places with no chunk are left out.
 */
export interface SizeClassCounts extends Partial<Record<FreePlace, Counted>> {
  min: number;
  max: number | null;
  inUse?: Counted;
}

export interface SnapshotArena {
  address: bigint;
  kind: 'main' | 'thread';
  /** Thread arenas: their heaps; main_arena 0. */
  heaps: number;
  /** system_mem: bytes the arena got from the system. */
  systemMem: number;
  /** Chunks in use (the tcache structs included: malloc's own). */
  inUse: Counted;
  /** Free chunks by place. */
  free: Record<FreePlace, Counted>;
  /** The top chunk's size. */
  top: number;
  /** The 16-byte chunks ending older thread heaps or a non-contiguous [heap]. */
  fenceposts: Counted;
  /** Chunks free by their next chunk's P bit that no bin lists (an inconsistency). */
  unlisted: Counted;
  /** Resident bytes of its [heap] or heaps (smaps). */
  rss: number;
  /**
   * A non-contiguous main_arena (brk failed, and glibc took memory with
   * mmap): system_mem less [heap]'s size (less what of [heap] it never
   * took, the doctor's foreignSbrk), the least of its memory outside
   * [heap], which `rss` does not count (no map line names it). Absent
   * otherwise, and in files written before it was kept.
   */
  outsideHeap?: number;
  /** Every size class holding a chunk other than top, smallest first. */
  classes: SizeClassCounts[];
}

export interface SnapshotProcess {
  pid: number;
  /** The snapshot was of the process that took it. */
  self: boolean;
  cmdline: string[];
  glibc: string;
  threads: number;
  pageSize: number;
}

export interface SnapshotMmapped {
  /** Chunks found by their headers in anonymous memory (doctor/mmapped.ts), their bytes and resident bytes. */
  count: number;
  bytes: number;
  resident: number;
  /** mp_.n_mmaps and mp_.mmapped_mem: what glibc counts. */
  nMmaps: number;
  mmappedMem: number;
}

export interface HeapSnapshotData {
  format: typeof SNAPSHOT_FORMAT;
  version: typeof SNAPSHOT_VERSION;
  /** When the copy was taken (ISO 8601, UTC). */
  takenAt: string;
  process: SnapshotProcess;
  /** mp_ in force (see doctor's ParamsInForce). */
  params: ParamsInForce & { tcacheCount: number; tcacheBins: number };
  arenas: SnapshotArena[];
  mmapped: SnapshotMmapped;
  /** Resident memory by what holds it (smaps; mmapped chunks by pagemap); the rows add up to `total`. */
  rss: { total: number; rows: RssRow[] };
  /** The decode's totals, as mallinfo2() sums them. */
  totals: MallinfoTotals;
  /** This process: mallinfo2() called in the native call that copied the allocator. */
  mallinfo?: Mallinfo;
  /** How the copy was taken: attempts, and whether it stood still. */
  copy: SnapshotInfo;
  /** Why some figure may be short. */
  incomplete: string[];
}
