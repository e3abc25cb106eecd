// The typed model of glibc's malloc_info(0, fp) report (its XML and how it
// is read: parse.ts). Tcache chunks appear nowhere in it: glibc counts them
// as in use.
import { InspectContext, presenter } from '../presenters';

/** A count of free chunks and their summed size in bytes. */
export interface BlockTotal {
  count: number;
  /** Bytes. */
  size: number;
}

/**
 * One `<size>` line of an arena.
 *
 * - `kind: 'fastbin'`: one fastbin. glibc prints the bin's range, not what
 *   is in it: `to` is the bin's chunk size (a multiple of 16) and `from` is
 *   `to - 15`; `total` is `count * to`.
 * - `kind: 'bin'`: one regular (small or large) bin. `from` and `to` are the
 *   smallest and largest chunks in it and `total` their sum, all taken from
 *   the raw size field (`chunksize_nomask`). A free chunk in a bin always has
 *   PREV_INUSE set and no other flag (glibc writes `size | PREV_INUSE` when it
 *   bins a chunk, in every arena), so these are chunk size + 1: a 2016-byte
 *   chunk reads 2017 and `total` is the bytes plus `count`. They are kept as
 *   printed.
 */
export interface SizeClassEntry {
  kind: 'fastbin' | 'bin';
  from: number;
  to: number;
  total: number;
  count: number;
}

/** The `<unsorted>` line: bin 1, with the same raw-size meaning as a regular bin. */
export interface UnsortedEntry {
  from: number;
  to: number;
  total: number;
  count: number;
}

export interface ArenaInfo {
  /** Position in glibc's arena list: 0 is the main arena. */
  nr: number;
  /** The non-empty fastbins, then the non-empty regular bins, in glibc's order. */
  sizes: SizeClassEntry[];
  /** The unsorted bin, when it is not empty. */
  unsorted?: UnsortedEntry;
  /** Chunks in fastbins; absent from 2.43, which has none (and writes no such total). */
  fast?: BlockTotal;
  /** The top chunk (always counted, as 1) plus every chunk in the unsorted and regular bins. */
  rest: BlockTotal;
  /** Bytes the arena has from the system now (`system_mem`). */
  systemCurrent: number;
  /** The most `systemCurrent` has been (`max_system_mem`). */
  systemMax: number;
  /** Address space reserved: `system_mem` for the main arena, the heaps' sizes for a thread arena. */
  aspaceTotal: number;
  /** Of that, the part made read-write (`system_mem` for the main arena). */
  aspaceMprotect: number;
  /** Thread arenas only: how many heaps (mmapped sub-heaps) the arena has. */
  subheaps?: number;
}

export interface MallocTotals {
  /** Chunks in fastbins, all arenas; absent from 2.43. */
  fast?: BlockTotal;
  /** Top chunks plus binned chunks, all arenas. */
  rest: BlockTotal;
  /** Chunks served directly by mmap (`mp_.n_mmaps`, `mp_.mmapped_mem`). */
  mmap: BlockTotal;
  systemCurrent: number;
  systemMax: number;
  aspaceTotal: number;
  aspaceMprotect: number;
}

export interface MallocInfo {
  /** The `version` attribute of `<malloc>` (1 in every glibc so far). */
  version: number;
  arenas: ArenaInfo[];
  totals: MallocTotals;
  /** The XML exactly as glibc wrote it. */
  raw: string;
}

/** How malloc_info()'s report and its arenas show themselves; installed by the view layer. */
export const mallocInfoViews = presenter<{
  inspect(info: MallocInfo, depth: number, options?: InspectContext): string;
  inspectArena(arena: ArenaInfo, depth: number, options?: InspectContext): string;
}>('MallocInfo');
