// The paging experiment's measurement: an mmapped malloc, an mmapped calloc
// and four heap blocks, each with mincore(2) over the block and
// /proc/self/statm around the call, around the first write of every byte and
// around free; then the kernel's transparent huge page settings.
import fs from 'node:fs';
import { ChunkHeader } from '../../chunk';
import { HeapscopeError } from '../../errors';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { pageSize } from '../../stats';

/**
 * An mmapped malloc, an mmapped calloc, then four heap blocks below the
 * mmap threshold in a row: the first ones are carved from the top chunk as
 * it is, and once it runs short the break moves and the next one gets
 * memory nobody has written yet.
 */
export type PagingBlock = 'malloc-mmapped' | 'calloc-mmapped' | 'malloc-heap-1' | 'malloc-heap-2' | 'malloc-heap-3' | 'malloc-heap-4';

export const BLOCKS: readonly PagingBlock[] = [
  'malloc-mmapped', 'calloc-mmapped', 'malloc-heap-1', 'malloc-heap-2', 'malloc-heap-3', 'malloc-heap-4',
];

/** When the row was measured: right after the call returned, after every byte was written, after free. */
export type PagingMoment = 'allocated' | 'touched' | 'freed';

export interface PagingRow {
  block: PagingBlock;
  call: 'malloc' | 'calloc';
  request: number;
  address: bigint;
  header: ChunkHeader;
  moment: PagingMoment;
  /** mincore over the block's usable bytes; not measured after free. */
  residentPages?: number;
  totalPages?: number;
  /** The process's resident set (statm), in pages. */
  rssPages: number;
  /** RSS change over the call, over the writes, or over free: from the statm step just before to the one just after. */
  rssDeltaPages: number;
  /** `allocated` rows: main_arena's top chunk (keepcost) and the program break around the call. */
  topBefore?: number;
  topAfter?: number;
  breakBefore?: bigint;
  breakAfter?: bigint;
}

const MMAPPED = 8 << 20;
export const HEAP = 64 << 10;

interface Indices {
  block: PagingBlock;
  call: 'malloc' | 'calloc';
  request: number;
  rssBefore: number;
  alloc: number;
  header: number;
  resident: number;
  rss: number;
  residentTouched: number;
  rssTouched: number;
  topBefore: number;
  topAfter: number;
  breakBefore: number;
  breakAfter: number;
  rssBeforeFree?: number;
  rssFreed?: number;
}

function plan(): { steps: PlanStep[]; blocks: Indices[] } {
  const steps: PlanStep[] = [];
  const push = (step: PlanStep): number => steps.push(step) - 1;
  const block = (name: PagingBlock, call: 'malloc' | 'calloc', request: number): Indices => {
    const topBefore = push({ op: 'mallinfo' });
    const breakBefore = push({ op: 'break' });
    const rssBefore = push({ op: 'statm' });
    const alloc = push(call === 'malloc' ? { op: 'malloc', size: request } : { op: 'calloc', count: 1, size: request });
    const topAfter = push({ op: 'mallinfo' });
    const breakAfter = push({ op: 'break' });
    const header = push({ op: 'header', step: alloc });
    const resident = push({ op: 'resident', step: alloc });
    const rss = push({ op: 'statm' });
    push({ op: 'touch', step: alloc });
    const residentTouched = push({ op: 'resident', step: alloc });
    const rssTouched = push({ op: 'statm' });
    return {
      block: name, call, request, rssBefore, alloc, topBefore, topAfter, breakBefore, breakAfter,
      header, resident, rss, residentTouched, rssTouched,
    };
  };
  const blocks = [
    block('malloc-mmapped', 'malloc', MMAPPED),
    block('calloc-mmapped', 'calloc', MMAPPED),
    block('malloc-heap-1', 'malloc', HEAP),
    block('malloc-heap-2', 'malloc', HEAP),
    block('malloc-heap-3', 'malloc', HEAP),
    block('malloc-heap-4', 'malloc', HEAP),
  ];
  // Freed last: freeing an mmapped chunk raises the dynamic mmap threshold
  // to its size, which would send the calloc after it to the heap.
  for (const b of blocks.slice(0, 2)) {
    b.rssBeforeFree = push({ op: 'statm' });
    push({ op: 'free', step: b.alloc });
    b.rssFreed = push({ op: 'statm' });
  }
  return { steps, blocks };
}

/**
 * Runs the plan and reads its rows in the order they were measured: per
 * block, after the call and after the writes; then after free for the two
 * freed last (the RSS column reads as the process's RSS over time).
 */
function measureRows(): PagingRow[] {
  const { steps, blocks } = plan();
  const { steps: results } = runPlan(steps);
  const rows: PagingRow[] = [];
  const freedRows: PagingRow[] = [];
  const ok = (i: number): StepResult => {
    const r = results[i];
    if (r.status !== 'ok') {
      throw new HeapscopeError('ERR_EXPERIMENT_FAILED', `step ${i} (${r.op}) ${r.status}${r.errno === undefined ? '' : `, errno ${r.errno}`}`);
    }
    return r;
  };
  for (const b of blocks) {
    const base = {
      block: b.block, call: b.call, request: b.request, address: ok(b.alloc).address!, header: ok(b.header).header!,
    };
    const rss = (i: number) => ok(i).rssPages!;
    rows.push({
      ...base,
      moment: 'allocated',
      residentPages: ok(b.resident).residentPages!,
      totalPages: ok(b.resident).totalPages!,
      rssPages: rss(b.rss),
      rssDeltaPages: rss(b.rss) - rss(b.rssBefore),
      topBefore: ok(b.topBefore).mallinfo!.keepcost,
      topAfter: ok(b.topAfter).mallinfo!.keepcost,
      breakBefore: ok(b.breakBefore).programBreak!,
      breakAfter: ok(b.breakAfter).programBreak!,
    });
    rows.push({
      ...base,
      moment: 'touched',
      residentPages: ok(b.residentTouched).residentPages!,
      totalPages: ok(b.residentTouched).totalPages!,
      rssPages: rss(b.rssTouched),
      rssDeltaPages: rss(b.rssTouched) - rss(b.rss),
    });
    if (b.rssFreed !== undefined) {
      freedRows.push({ ...base, moment: 'freed', rssPages: rss(b.rssFreed), rssDeltaPages: rss(b.rssFreed) - rss(b.rssBeforeFree!) });
    }
  }
  return [...rows, ...freedRows];
}

export interface HugePages {
  /** The kernel's transparent huge page mode ('always', 'madvise', 'never'); undefined where it cannot be read. */
  mode?: string;
  /**
   * The largest folio, in bytes, a first write may fault in on anonymous
   * memory that never called madvise: a size whose mode is 'always', or
   * 'inherit' while the top-level mode is 'always'. 0 when none is.
   */
  alwaysSize: number;
}

export const THP = '/sys/kernel/mm/transparent_hugepage';

/** Reads the transparent huge page settings (top-level, and per size on kernels with multi-size THP). */
export function transparentHugePages(): HugePages {
  const selected = (file: string): string | undefined => {
    try {
      return /\[(\w+)\]/.exec(fs.readFileSync(file, 'utf8'))?.[1];
    } catch {
      return undefined;
    }
  };
  const mode = selected(`${THP}/enabled`);
  let sizes: string[] = [];
  try {
    sizes = fs.readdirSync(THP).filter((name) => /^hugepages-\d+kB$/.test(name));
  } catch {
    // no sysfs: nothing known
  }
  let alwaysSize = 0;
  if (sizes.length === 0 && mode === 'always') {
    try {
      alwaysSize = Number(fs.readFileSync(`${THP}/hpage_pmd_size`, 'utf8'));
    } catch {
      alwaysSize = 2 << 20;
    }
  }
  for (const name of sizes) {
    const size = Number(/\d+/.exec(name)![0]) * 1024;
    const own = selected(`${THP}/${name}/enabled`);
    if (own === 'always' || (own === 'inherit' && mode === 'always')) alwaysSize = Math.max(alwaysSize, size);
  }
  return { ...(mode === undefined ? {} : { mode }), alwaysSize };
}

/** What a run measured: its rows, then the page size and the huge page settings, read after the plan. */
export interface Measured {
  rows: PagingRow[];
  page: number;
  thp: HugePages;
}

export function measure(): Measured {
  const rows = measureRows();
  const page = pageSize();
  return { rows, page, thp: transparentHugePages() };
}
