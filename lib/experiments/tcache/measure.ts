// The tcache experiment's measurement: per request size, drain the cached
// chunks, malloc test chunks (each behind a guard), free them one by one and
// malloc them back, with mallinfo after each step.
import { PlanStep, runPlan } from '../../plan';
import { requestToChunkSize } from '../../size-classes';
import { Mallinfo } from '../../stats';

/** One size per regime: fastbin-sized, tcache-only (above fastbins), and above the tcache range. */
export const REQUESTS = [40, 200, 1100];
/**
 * Test chunks freed one at a time per size: three more than the tcache bins
 * hold (mp_.tcache_count, read before the run: 7 by default, 16 from 2.43),
 * so that the bin fills and the frees after it show where chunks go then;
 * at least 10, at most 128.
 */
export function testChunks(tcacheCount: number): number {
  return Math.min(128, Math.max(10, tcacheCount + 3));
}
/**
 * Mallocs of the size before the test chunks (the first run's; a run
 * measured again drains 4 times as many as the one before): they take whatever Node's own
 * frees left in the tcache bin and the arena's bins for that size, so the
 * frees below start from an empty tcache bin and measure its capacity, not
 * its free slots.
 */
export const DRAIN = 32;

export type TcacheStep = 'drain' | 'malloc' | 'free' | 'remalloc';
/** Where a free went, judged from the mallinfo change it made. */
export type FreeDestination = 'tcache' | 'fastbin' | 'bin' | 'unclear';
/** Where a malloc's chunk came from, judged the same way. */
export type MallocSource = 'tcache' | 'arena' | 'unclear';

/** The mallinfo fields a free or malloc of one small chunk moves. */
export interface MallinfoChange {
  smblks: number;
  fsmblks: number;
  uordblks: number;
  fordblks: number;
  ordblks: number;
}

export interface TcacheRow {
  request: number;
  /** request2size(request): the chunk size, and so the tcache bin, the request asks for. */
  binSize: number;
  /** This chunk's size, from its header: binSize, or more when a free chunk was handed out whole. */
  chunkSize: number;
  step: TcacheStep;
  /** Position among this size's steps of the same kind, from 0. */
  order: number;
  /** The test chunk (0, 1, …): the one malloc'd or freed, or whose address a remalloc got back. */
  chunk?: number;
  address: bigint;
  /** malloc rows: the guard chunk malloc'd right after it, and its size. */
  guardAddress?: bigint;
  guardSize?: number;
  /**
   * malloc rows: the chunk starts where the chunk malloc'd just before it
   * (the previous guard, or the last drain chunk) ends: carved back to back
   * from free memory.
   */
  carved?: boolean;
  /** malloc rows: its guard starts where it ends. */
  guardCarved?: boolean;
  /** free and remalloc rows: mallinfo after the step and what the step changed. */
  mallinfo?: Mallinfo;
  change?: MallinfoChange;
  went?: FreeDestination;
  from?: MallocSource;
  /** remalloc rows served by the arena: chunks that left its free lists (−Δfordblks / chunk size). */
  leftArena?: number;
}

/** Per request: the plan-step indices of its phases. */
interface Layout {
  request: number;
  drain: number[];
  mallocs: number[];
  baseline: number;
  frees: number[];
  remallocs: number[];
}

function plan(drainCount: number, chunks: number): { steps: PlanStep[]; layouts: Layout[] } {
  const steps: PlanStep[] = [];
  const layouts: Layout[] = [];
  const push = (step: PlanStep) => steps.push(step) - 1;
  const mallocWithHeader = (size: number) => {
    const m = push({ op: 'malloc', size });
    push({ op: 'header', step: m });
    return m;
  };
  for (const request of REQUESTS) {
    // A free chunk 16 bytes bigger than the request's would be handed out
    // whole (splitting it would leave less than MINSIZE) and land the test
    // chunk in the next tcache bin; take those first, then the size's own.
    for (let i = 0; i < drainCount; i++) push({ op: 'malloc', size: request + 16 });
    const drain = Array.from({ length: drainCount }, () => mallocWithHeader(request));
    // Each test chunk is followed by a guard of the same size that is never
    // freed, so a freed chunk that reaches the arena's bins has in-use
    // neighbours and cannot coalesce.
    const mallocs = Array.from({ length: chunks }, () => {
      const m = mallocWithHeader(request);
      mallocWithHeader(request);
      return m;
    });
    const baseline = push({ op: 'mallinfo' });
    const frees = mallocs.map((m) => {
      const f = push({ op: 'free', step: m });
      push({ op: 'mallinfo' });
      return f;
    });
    const remallocs = mallocs.map(() => {
      const m = mallocWithHeader(request);
      push({ op: 'mallinfo' });
      return m;
    });
    layouts.push({ request, drain, mallocs, baseline, frees, remallocs });
  }
  return { steps, layouts };
}

function change(before: Mallinfo, after: Mallinfo): MallinfoChange {
  return {
    smblks: after.smblks - before.smblks,
    fsmblks: after.fsmblks - before.fsmblks,
    uordblks: after.uordblks - before.uordblks,
    fordblks: after.fordblks - before.fordblks,
    ordblks: after.ordblks - before.ordblks,
  };
}

function wentTo(d: MallinfoChange, chunkSize: number): FreeDestination {
  // A chunk in tcache still counts as in use, so mallinfo does not move.
  if (d.smblks === 0 && d.fsmblks === 0 && d.uordblks === 0 && d.fordblks === 0) return 'tcache';
  if (d.smblks === 1 && d.fsmblks === chunkSize && d.uordblks === -chunkSize) return 'fastbin';
  if (d.smblks === 0 && d.fsmblks === 0 && d.uordblks === -chunkSize && d.fordblks === chunkSize) return 'bin';
  return 'unclear';
}

function cameFrom(d: MallinfoChange, chunkSize: number): { from: MallocSource; leftArena?: number } {
  if (d.uordblks === 0 && d.fordblks === 0) return { from: 'tcache' };
  const left = -d.fordblks / chunkSize;
  if (Number.isInteger(left) && left >= 1 && d.uordblks === -d.fordblks) return { from: 'arena', leftArena: left };
  return { from: 'unclear' };
}

/** Runs of the plan to try for one whose test chunks all have their request's chunk size. */
const ATTEMPTS = 3;

/** The rows of the run shown, and for each earlier run how many test chunks were handed out whole (16 bytes over). */
export interface Measured {
  rows: TcacheRow[];
  missed: number[];
}

/**
 * The plan, measured again (up to three runs, each with a longer drain)
 * while a test chunk came out 16 bytes over its size: a free chunk that
 * size outlived the drain, or a drain malloc split one and left it. The
 * earlier run's own chunks, freed when its plan ended, are drained too.
 */
export function measure(chunks: number): Measured {
  const missed: number[] = [];
  for (let attempt = 1; ; attempt++) {
    const rows = measureOnce(DRAIN * 4 ** (attempt - 1), chunks);
    const whole = rows.filter((r) => r.step === 'malloc' && r.chunkSize !== r.binSize).length;
    if (whole === 0 || attempt >= ATTEMPTS) return { rows, missed };
    missed.push(whole);
  }
}

function measureOnce(drainCount: number, chunks: number): TcacheRow[] {
  const { steps, layouts } = plan(drainCount, chunks);
  const { steps: results } = runPlan(steps);
  const rows: TcacheRow[] = [];
  for (const layout of layouts) {
    const { request } = layout;
    const binSize = requestToChunkSize(request);
    const base = { request, binSize };
    const sizeOf = (m: number) => results[m + 1].header!.size;
    const end = (m: number) => results[m].address! + BigInt(sizeOf(m));
    const test = layout.mallocs.map((m) => ({ address: results[m].address!, chunkSize: sizeOf(m) }));
    layout.drain.forEach((d, order) => rows.push({ ...base, chunkSize: sizeOf(d), step: 'drain', order, address: results[d].address! }));
    let previous = layout.drain[layout.drain.length - 1];
    layout.mallocs.forEach((m, order) => {
      const guard = m + 2;
      rows.push({
        ...base, ...test[order], step: 'malloc', order, chunk: order,
        guardAddress: results[guard].address!, guardSize: sizeOf(guard),
        carved: results[m].address === end(previous), guardCarved: results[guard].address === end(m),
      });
      previous = guard;
    });
    let before = results[layout.baseline].mallinfo!;
    layout.frees.forEach((f, order) => {
      const after = results[f + 1].mallinfo!;
      const d = change(before, after);
      rows.push({ ...base, ...test[order], step: 'free', order, chunk: order, mallinfo: after, change: d, went: wentTo(d, test[order].chunkSize) });
      before = after;
    });
    layout.remallocs.forEach((m, order) => {
      const address = results[m].address!;
      const chunkSize = sizeOf(m);
      const after = results[m + 2].mallinfo!;
      const d = change(before, after);
      const found = test.findIndex((t) => t.address === address);
      rows.push({
        ...base, chunkSize, step: 'remalloc', order, ...(found >= 0 ? { chunk: found } : {}), address,
        mallinfo: after, change: d, ...cameFrom(d, chunkSize),
      });
      before = after;
    });
  }
  return rows;
}

/**
 * How many frees of binSize chunks went to tcache before the first that did
 * not (chunks handed out bigger belong to another bin and are skipped), and
 * whether that first one was seen.
 */
export function measuredCapacity(rows: readonly TcacheRow[], request: number): { capacity: number; bounded: boolean } {
  const frees = rows.filter((r) => r.request === request && r.step === 'free' && r.chunkSize === r.binSize);
  const n = frees.findIndex((r) => r.went !== 'tcache');
  return n < 0 ? { capacity: frees.length, bounded: false } : { capacity: n, bounded: true };
}
