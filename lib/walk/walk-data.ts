// What a walk found, as plain data: what walkHeap() and attach(pid).walk()
// return and every view of a walk reads.
import type { ThreadCache } from '../allocator/tcaches';
import type { MallinfoTotals } from '../allocator/totals';
import type { StepResult } from '../plan';
import type { Mallinfo } from '../stats';
import type { MallinfoCheck } from './checks';
import type { HeapRegionWalk, WalkTotals } from './heap-walk';

/** What a walk found: the plain data behind HeapWalk. */
export interface HeapWalkData {
  /** The process walked: another one's pid (attach(pid).walk()), absent for this process. */
  pid?: number;
  /** main_arena's [heap]. */
  main: HeapRegionWalk;
  /** A non-contiguous main_arena's top chunk, outside [heap] in memory glibc took with mmap, when the snapshot copied it. */
  mainTop?: HeapRegionWalk;
  /** Each thread-arena heap, arena by arena in list order, newest heap first (none with `arena: 'main'`). */
  threadHeaps: HeapRegionWalk[];
  /** Every region's totals added up. */
  totals: WalkTotals;
  /** Every tcache found (the calling thread's has owner `calling-thread`), in the arenas shown. */
  tcaches: ThreadCache[];
  /**
   * The walk's own mallinfo2(), from the places of the chunks it met in
   * every arena (with `arena: 'main'` too), mp_ and the arenas' system_mem.
   */
  mallinfoTotals: MallinfoTotals;
  /** This process: mallinfo2() right after the snapshot, in the same native call. */
  mallinfo?: Mallinfo;
  /** This process: every field of `mallinfo` against `mallinfoTotals`, with the difference. Empty for another process. */
  checks: MallinfoCheck[];
  /** Inconsistencies between the walk and the lists: free chunks no bin lists, listed chunks the walk never met, lists cut short. */
  problems: string[];
  /** Nothing moved while the snapshot was copied. */
  consistent: boolean;
  /** Why the last snapshot is not consistent, when it is not. */
  inconsistency?: string;
  /** Why the snapshot may have made pages never touched resident, when it may have (see CopiedSnapshot). */
  madeResident?: string;
  /** Snapshots taken (see WalkOptions.attempts). */
  attempts: number;
  /** This process: the program break right after the snapshot. */
  programBreak?: bigint;
  /** Results of the `before` steps. */
  steps: StepResult[];
}

/** The shape of a walk's SVG strip. */
export interface WalkSVGOptions {
  /** Cells a row (default 64). */
  columns?: number;
  /** The most rows one heap's strip takes (default 8). With columns × rows ≥ its chunks, a heap gets one cell per chunk. */
  rows?: number;
}

/** The regions of a walk in the order views show them: [heap], main_arena's top region, the thread heaps. */
export function walkRegions(walk: HeapWalkData): HeapRegionWalk[] {
  // Own properties only (a polluted Object.prototype holds no region).
  const mainTop = Object.hasOwn(walk, 'mainTop') ? walk.mainTop : undefined;
  return [walk.main, ...(mainTop === undefined ? [] : [mainTop]), ...walk.threadHeaps];
}
