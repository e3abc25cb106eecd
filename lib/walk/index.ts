// walkHeap(): every chunk of every arena, each with its place (in use, a
// thread's tcache, a fastbin, the unsorted, a small or a large bin, top),
// all from one allocator snapshot copied inside one native call: nothing
// is read live after it.
import { inspect } from 'node:util';
import { liveAt, liveCount, liveWithin } from '../allocation';
import { decodeSnapshot } from '../allocator/results';
import { releaseCopies, snapshotAttempts, takeAllocatorSnapshot } from '../allocator/take-snapshot';
import { rangeError } from '../errors';
import { PlanStep, StepResult } from '../plan';
import { Mallinfo } from '../stats';
import { defineOwn, describe, readArray, readOptions, toIndex } from '../validate';
import { InspectContext, MimeBundle, presenter } from '../presenters';
import { heapWalkData } from './build';
import { MallinfoCheck } from './checks';
import { HeapRegionWalk, OwnBlocks, WalkTotals } from './heap-walk';
import { HeapWalkData, WalkSVGOptions } from './walk-data';
import type { ThreadCache } from '../allocator/tcaches';
import type { MallinfoTotals } from '../allocator/totals';

export { A_BIT, FREE_BIT, M_BIT, P_BIT, walkSnapshot } from './chunk';
export type { ChunkTable, Offsets, SnapshotWalk, SnapshotWalkOptions } from './chunk';
export type { MallinfoCheck } from './checks';
export { PLACES } from './heap-walk';
export type { HeapChunk, HeapRegionWalk, WalkTotals } from './heap-walk';
export { mainHeapSnapshot } from './main-snapshot';
export type { MainHeapSnapshot } from './main-snapshot';
export { walkRegions } from './walk-data';
export type { HeapWalkData, WalkSVGOptions } from './walk-data';

export interface WalkOptions {
  /** `all` (default): every arena's regions. `main`: only main_arena's (the totals and checks still cover every arena). */
  arena?: 'main' | 'all';
  /**
   * Plan steps run in the same native call just before the snapshot (see
   * runPlan); their allocations are still live in the snapshot and freed
   * right after it. Their results are in `steps`. They run again with each
   * new snapshot (see `attempts`).
   */
  before?: readonly PlanStep[];
  /**
   * How many snapshots to try for one during which nothing moved (default
   * 5, at most 100): mallinfo2() and the break the same before and after the
   * copy, and the arenas' lists and tops agreeing.
   */
  attempts?: number;
}

/** How a walk shows itself; installed by the view layer. */
export const walkViews = presenter<{
  svg(walk: HeapWalkData, options: WalkSVGOptions): string;
  html(walk: HeapWalkData, options: WalkSVGOptions): string;
  inspect(walk: HeapWalkData, depth: number, options?: InspectContext): string;
  bundle(walk: HeapWalkData): MimeBundle;
}>('HeapWalk');

/**
 * walkHeap()'s result: the data, plus its views (a one-line REPL summary,
 * an SVG strip, an HTML fragment, a Jupyter bundle).
 */
export class HeapWalk implements HeapWalkData {
  // Declared, not defined: the data's own properties, as walkHeap made them.
  declare pid?: number;
  declare main: HeapRegionWalk;
  declare mainTop?: HeapRegionWalk;
  declare threadHeaps: HeapRegionWalk[];
  declare totals: WalkTotals;
  declare tcaches: ThreadCache[];
  declare mallinfoTotals: MallinfoTotals;
  declare mallinfo?: Mallinfo;
  declare checks: MallinfoCheck[];
  declare problems: string[];
  declare consistent: boolean;
  declare inconsistency?: string;
  declare madeResident?: string;
  declare attempts: number;
  declare programBreak?: bigint;
  declare steps: StepResult[];

  constructor(data: HeapWalkData) {
    for (const [key, value] of Object.entries(data)) defineOwn(this, key, value);
  }

  /** The heap as a strip of cells (the terminal strip's cells), a legend, row addresses and sizes, and each heap's totals. */
  toSVG(options?: WalkSVGOptions): string {
    return walkViews.views.svg(this, svgOptions(options));
  }

  /** Self-contained: the SVG, each heap's totals, the tcaches and the mallinfo2() checks. */
  toHTML(options?: WalkSVGOptions): string {
    return walkViews.views.html(this, svgOptions(options));
  }

  [inspect.custom](depth: number, options: InspectContext): string {
    return walkViews.views.inspect(this, depth, options);
  }

  /** Deno's Jupyter kernel. */
  [Symbol.for('Jupyter.display')](): MimeBundle {
    return walkViews.views.bundle(this);
  }

  /** ijavascript's display hook. */
  _toMime(): MimeBundle {
    return walkViews.views.bundle(this);
  }
}

/** The strip's shape: whole numbers of cells a row (8 to 4096) and rows (at least 1), own properties only. */
function svgOptions(options: unknown): WalkSVGOptions {
  const o = readOptions(options, 'options', ['columns', 'rows']);
  const columns = o.columns === undefined ? undefined : toIndex(o.columns, 'options.columns', 4096);
  const rows = o.rows === undefined ? undefined : toIndex(o.rows, 'options.rows', 1 << 24);
  if (columns !== undefined && columns < 8) throw rangeError(`options.columns must be at least 8, got ${columns}`);
  if (rows !== undefined && rows < 1) throw rangeError(`options.rows must be at least 1, got ${rows}`);
  // No prototype: the views read these fields, and must not find inherited ones.
  const checked: WalkSVGOptions = Object.create(null);
  if (columns !== undefined) checked.columns = columns;
  if (rows !== undefined) checked.rows = rows;
  return checked;
}

/** options.arena checked: 'all' when absent. */
export function walkArena(arena: unknown): 'main' | 'all' {
  if (arena === undefined) return 'all';
  if (arena !== 'main' && arena !== 'all') {
    throw rangeError(`options.arena must be 'main' or 'all', got ${typeof arena === 'string' ? JSON.stringify(arena) : describe(arena)}`);
  }
  return arena;
}

function validate(options: WalkOptions): { arena: 'main' | 'all'; before: readonly PlanStep[]; attempts: number } {
  const o = readOptions(options, 'options', ['arena', 'before', 'attempts']);
  const arena = walkArena(o.arena);
  const before = o.before === undefined ? [] : readArray(o.before, 'options.before') as PlanStep[];
  const attempts = snapshotAttempts(o.attempts);
  return { arena, before, attempts };
}

/**
 * Walks every arena's memory chunk by chunk from one allocator snapshot
 * (allocatorSnapshot: libc's data, [heap] and every thread-arena heap copied
 * in one native call, between two mallinfo2() calls), and says where each
 * chunk is. A snapshot torn by another thread is retaken (see `attempts`);
 * the last one is walked all the same, with `consistent: false`. The memory
 * is read through process_vm_readv: a bad size can end a walk, never crash
 * the process.
 */
// Lookups in the live handles' own table, keyed by number: a Map keyed by
// bigint chunk addresses cost ~0.5 us a chunk to build and to ask, as much as
// the rest of the walk.
const ownBlocks = (): OwnBlocks => ({
  count: liveCount(),
  at: (chunk) => liveAt(chunk + 16),
  within: (lo, hi) => chunksOf(liveWithin(lo + 16, hi + 16)),
});

/** The chunks of `blocks`, in place: map() made a second array, from malloc when big (a chunk that, freed, raised glibc's mmap threshold). */
function chunksOf(blocks: Float64Array): Float64Array {
  for (let i = 0; i < blocks.length; i++) blocks[i] -= 16;
  return blocks;
}

export function walkHeap(options: WalkOptions = {}): HeapWalk {
  const { arena, before, attempts } = validate(options);
  const s = takeAllocatorSnapshot({ before, attempts }, { released: true });
  try {
    return new HeapWalk(heapWalkData(decodeSnapshot(s), {
      mainOnly: arena === 'main', ours: ownBlocks(), mallinfo: s.mallinfo, programBreak: s.programBreak, steps: s.steps,
    }));
  } finally {
    // The walk keeps what it decoded, never the copy's bytes.
    releaseCopies(s);
  }
}
