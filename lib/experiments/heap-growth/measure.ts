// The heap-growth experiment's measurement: COUNT mallocs of SIZE bytes, all
// kept, then every one freed oldest first, with the break and main_arena's
// top chunk after each step.
import { PlanStep, runPlan } from '../../plan';
import { pageSize } from '../../stats';

/** One malloc, or one of the frees at the end, with the break and top chunk around it. */
export interface HeapGrowthRow {
  op: 'malloc' | 'free';
  /** The nth malloc or the nth free, from 1. */
  n: number;
  size: number;
  /** Bytes requested by the allocations still live after this step: the x axis of a break chart. */
  requested: number;
  address: bigint;
  breakBefore: bigint;
  breakAfter: bigint;
  /** main_arena's top chunk (mallinfo keepcost) just before and just after the step. */
  topBefore: number;
  topAfter: number;
  /** mallinfo's fastbin bytes (fsmblks) just before and just after the step: a drop is malloc_consolidate at work. */
  fastBefore?: number;
  fastAfter?: number;
}

/** A step where the break moved: growth (`size` > 0) or a trim (`size` < 0). */
export interface BreakStep {
  /** Index of the row that moved it. */
  row: number;
  op: 'malloc' | 'free';
  n: number;
  requested: number;
  from: bigint;
  to: bigint;
  size: number;
  /**
   * Growth only: the chunk size minus the top chunk the heap grew from (the top after the step, plus the chunk, less
   * the step): what the top chunk was missing. It is the top read before the step unless that changed within the step.
   */
  missing?: number;
  /** Growth only: `size − missing`, what brk took beyond the need. */
  extra?: number;
}

export const COUNT = 4000;
export const SIZE = 1000;

export function breakSteps(rows: readonly HeapGrowthRow[]): BreakStep[] {
  const out: BreakStep[] = [];
  rows.forEach((r, row) => {
    const size = Number(r.breakAfter - r.breakBefore);
    if (size === 0) return;
    const step: BreakStep = { row, op: r.op, n: r.n, requested: r.requested, from: r.breakBefore, to: r.breakAfter, size };
    if (r.op === 'malloc' && size > 0) {
      // chunk − (top after + chunk − step).
      step.missing = size - r.topAfter;
      step.extra = size - step.missing;
    }
    out.push(step);
  });
  return out;
}

/** What a run measured: its rows, and the page size read before the plan. */
export interface Measured {
  rows: HeapGrowthRow[];
  page: number;
}

/**
 * COUNT mallocs, each followed by the break and mallinfo, all kept; then
 * every one freed oldest first, each free followed by the same readings.
 */
export function measure(): Measured {
  const page = pageSize();
  const steps: PlanStep[] = [{ op: 'mallinfo' }, { op: 'break' }];
  const mallocs: number[] = [];
  for (let i = 0; i < COUNT; i++) {
    mallocs.push(steps.length);
    steps.push({ op: 'malloc', size: SIZE }, { op: 'break' }, { op: 'mallinfo' });
  }
  for (const m of mallocs) steps.push({ op: 'free', step: m }, { op: 'break' }, { op: 'mallinfo' });
  const { steps: results } = runPlan(steps);

  const rows: HeapGrowthRow[] = [];
  let brk = results[1].programBreak!;
  let top = results[0].mallinfo!.keepcost;
  let fast = results[0].mallinfo!.fsmblks;
  let requested = 0;
  for (let at = 2; at < results.length; at += 3) {
    const isMalloc = steps[at].op === 'malloc';
    const k = rows.length;
    requested += isMalloc ? SIZE : -SIZE;
    const row: HeapGrowthRow = {
      op: isMalloc ? 'malloc' : 'free',
      n: isMalloc ? k + 1 : k - COUNT + 1,
      size: SIZE,
      requested,
      address: results[isMalloc ? at : mallocs[k - COUNT]].address!,
      breakBefore: brk,
      breakAfter: results[at + 1].programBreak!,
      topBefore: top,
      topAfter: results[at + 2].mallinfo!.keepcost,
      fastBefore: fast,
      fastAfter: results[at + 2].mallinfo!.fsmblks,
    };
    rows.push(row);
    brk = row.breakAfter;
    top = row.topAfter;
    fast = row.fastAfter!;
  }
  return { rows, page };
}
