// What a walk found, as plain data: what walkHeap() returns and every view of a walk reads.
import type { StepResult } from '../plan';
import type { Mallinfo } from '../stats';
import type { HeapRegionWalk } from './heap-walk';
import type { MallinfoCheck } from './main-arena';
import type { Tcache } from './tcache';

/** What a walk found: the plain data behind HeapWalk. */
export interface HeapWalkData {
  /** main_arena's [heap]. */
  main: HeapRegionWalk;
  /** With `arena: 'all'`: each thread-arena heap, in address order. */
  threadHeaps: HeapRegionWalk[];
  /** The calling thread's tcache, decoded; undefined when it was not found (see `tcacheReason`). */
  tcache?: Tcache;
  tcacheReason?: string;
  /** mallinfo2() right after the snapshot. */
  mallinfo: Mallinfo;
  /** mallinfo2() was the same just before and just after the snapshot: no arena's totals moved while it was read. */
  stable: boolean;
  programBreak: bigint;
  /** No thread arena was mapped: mallinfo2's sums are main_arena's alone. */
  singleArena: boolean;
  /** The walk compared with mallinfo2() (which comparisons are exact: see mallinfoChecks). */
  checks: MallinfoCheck[];
  /** Snapshots taken (see WalkOptions.attempts). */
  attempts: number;
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
