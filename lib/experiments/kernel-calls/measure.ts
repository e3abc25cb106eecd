// The kernel-calls experiment's measurement: a small request, fillers, a
// request past the top chunk, one above the mmap threshold and its free, each
// with mallinfo's top chunk, the break and the whole map around it. The
// requests are chosen from mp_ and main_arena's bins right before each plan.
import { BinChunk } from '../../allocator/bin-walk';
import { ArenaBins } from '../../allocator/bins';
import { bins } from '../../allocator-state';
import { blockedBreak } from '../../break-room';
import { MemoryRegion, parseMaps, regionOf } from '../../maps';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { MINSIZE, MmappedTail, requestToChunkSize, tcacheIndex } from '../../size-classes';
import { pageSize } from '../../stats';
import { own } from '../../validate';
import { diffMaps, freeChunkSizes, mallocPar, MapsDiff, mmappedTailHere, rangeHolding } from '../measure';

export type KernelVerdict = 'served from memory it held' | 'brk' | 'mmap' | 'munmap' | 'no kernel call seen';

/**
 * - `small`: a small request, expected to fit in memory malloc holds;
 * - `filler`: a request that uses up a large free chunk or most of the top
 *   chunk, so that `past-top` finds neither big enough;
 * - `past-top`: larger than the top chunk and any free chunk, two pages below the mmap threshold;
 * - `large`: 1 MiB, above the default mmap threshold (or mp_.mmap_threshold itself, when a freed mmapped chunk had raised it past 1 MiB);
 * - `free-large`: the `large` allocation freed.
 */
export type KernelStepRole = 'small' | 'filler' | 'past-top' | 'large' | 'free-large';

export interface KernelCallRow {
  role: KernelStepRole;
  op: 'malloc' | 'free';
  /** The request (for a free, the freed allocation's request). */
  size: number;
  /** From the chunk header. */
  chunkSize: number;
  /** The header's IS_MMAPPED bit. */
  mmapped: boolean;
  address: bigint;
  breakBefore: bigint;
  breakAfter: bigint;
  /** breakAfter − breakBefore, negative when the heap shrank. */
  breakDelta: number;
  /** main_arena's top chunk (mallinfo keepcost) just before and just after the step. */
  topBefore: number;
  topAfter: number;
  /** mallinfo's fastbin bytes (fsmblks) just before and just after the step: a drop is malloc_consolidate at work. */
  fastBefore?: number;
  fastAfter?: number;
  /** The map after the step compared with the map before it. */
  mapsChange: MapsDiff;
  /** The region holding the address after a malloc, before a free. */
  region?: MemoryRegion;
  verdict: KernelVerdict;
}

const SMALL = 64;
export const LARGE = 1 << 20;
/** What a top filler leaves of the top chunk, at most: less than past-top's chunk under a small mmap threshold (topLeft). */
const TOP_LEFT = 16 * 1024;

/** What a top filler leaves: TOP_LEFT, or half of past-top's chunk when that is less, so that the rest cannot hold it. */
function topLeft(pastTop: number): number {
  return Math.min(TOP_LEFT, Math.max(MINSIZE, Math.floor(pastTop / 32) * 16));
}

type Op = { role: KernelStepRole; op: 'malloc'; size: number } | { role: 'free-large'; op: 'free'; of: number };

/**
 * Picks the requests from a measurement. A request moves the break only
 * when neither a free chunk nor the top chunk holds it, and it must stay
 * below the mmap threshold; `past-top` is the largest request two pages
 * below it, which leaves the most room for chunks freed between the
 * measurement and the plan. A top chunk within a page of it is cut down by a filler
 * to TOP_LEFT (less under a small threshold: topLeft); free chunks that could serve that filler or `past-top`
 * instead are used up first by exact-size fillers (an exact fit is taken
 * from its bin before the top chunk is touched).
 */
export function chooseOps(page: number): Choice {
  // What sysmalloc compares with, whoever set it (default, tunable, environment, mallopt, a free that raised it).
  const par = mallocPar();
  const threshold = Number(par.mmapThreshold);
  const pastTop = requestToChunkSize(Math.max(threshold - 2 * page, page) - 8);
  const main = bins().arenas.find((a) => a.kind === 'main');
  const free = freeChunkSizes(main);
  // Read last, right before the plan: the filler arithmetic needs today's top.
  const top = runPlan([{ op: 'mallinfo' }]).steps[0].mallinfo!.keepcost;
  // A top that could hold past-top (or nearly) is cut down; one already below what a filler would leave needs none.
  const left = topLeft(pastTop);
  const topFiller = top + page > pastTop && top - left >= MINSIZE ? top - left : undefined;
  const cutoff = Math.min(pastTop, topFiller ?? pastTop);
  const ops: Op[] = [{ role: 'small', op: 'malloc', size: SMALL }];
  for (const size of free.filter((f) => f >= cutoff)) ops.push({ role: 'filler', op: 'malloc', size: size - 8 });
  if (topFiller !== undefined) ops.push({ role: 'filler', op: 'malloc', size: topFiller - 8 });
  ops.push({ role: 'past-top', op: 'malloc', size: pastTop - 8 });
  // A request whose chunk is at least the threshold is mmapped (a node whose start-up freed a bigger mmapped chunk has raised it).
  ops.push({ role: 'large', op: 'malloc', size: Math.max(LARGE, threshold) });
  ops.push({ role: 'free-large', op: 'free', of: ops.length - 1 });
  return { ops, listed: listedOf(main), thresholdBefore: { bytes: threshold, fixed: par.noDynThreshold !== 0 } };
}

/** The requests of one plan, and what they were chosen from. */
export interface Choice {
  ops: Op[];
  listed: Listed;
  /** mp_.mmap_threshold and whether mp_.no_dyn_threshold was set, read before the plan. */
  thresholdBefore: { bytes: number; fixed: boolean };
}

/** The free chunks main_arena's bins listed when the requests were chosen. */
export interface Listed {
  chunks: BinChunk[];
  /** False when a list stopped early (its bin's `reason`): more chunks may have been free. */
  whole: boolean;
}

function listedOf(main: ArenaBins | undefined): Listed {
  if (main === undefined) return { chunks: [], whole: false };
  const lists = [...main.fastbins, ...main.unsorted, ...main.smallbins, ...main.largebins];
  return { chunks: lists.flatMap((b) => b.chunks), whole: lists.every((b) => own(b, 'reason') === undefined) };
}

/** mallinfo's top chunk, the break and the map, read in one place of the plan. */
export interface Snapshot {
  top: number;
  /** mallinfo's uordblks and hblkhd: what the arenas hold in use, and the bytes of mmapped chunks. */
  inUse: number;
  mmappedBytes: number;
  fast: number;
  brk: bigint;
  regions: MemoryRegion[];
}

function snapshotSteps(steps: PlanStep[]): number {
  steps.push({ op: 'mallinfo' }, { op: 'break' }, { op: 'maps' });
  return steps.length - 3;
}

function readSnapshot(results: StepResult[], at: number): Snapshot {
  const m = results[at].mallinfo!;
  return { top: m.keepcost, inUse: m.uordblks, mmappedBytes: m.hblkhd, fast: m.fsmblks, brk: results[at + 1].programBreak!, regions: parseMaps(results[at + 2].maps!) };
}

/**
 * Another thread's malloc or free between two snapshots of the plan, if
 * mallinfo shows one: a step changes what is in use by its own chunk only
 * (a heap chunk in uordblks, an mmapped one in hblkhd). Such a change can
 * move the top chunk under the step (a chunk freed beside it merges into
 * it), so the top and break figures of that run are not the step's alone.
 * A chunk of a tcache size is not checked: mallinfo counts tcache chunks as
 * in use, and a malloc from a bin moves more of the bin into the tcache.
 * hblkhd counts an mmapped chunk's mapping: its size plus `tail`
 * (GlibcLayout.mmappedTail, 16 from 2.43).
 */
export function otherThread(
  rows: readonly KernelCallRow[], snapshots: readonly Pick<Snapshot, 'inUse' | 'mmappedBytes'>[], tail: MmappedTail = 0,
): string | undefined {
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k];
    if (!r.mmapped && tcacheIndex(r.chunkSize) !== undefined) continue;
    const sign = r.op === 'malloc' ? 1 : -1;
    const inUse = snapshots[k + 1].inUse - snapshots[k].inUse;
    const mmapped = snapshots[k + 1].mmappedBytes - snapshots[k].mmappedBytes;
    const expected = r.mmapped ? { inUse: 0, mmapped: sign * (r.chunkSize + tail) } : { inUse: sign * r.chunkSize, mmapped: 0 };
    if (inUse !== expected.inUse || mmapped !== expected.mmapped) {
      return `around the ${r.role} ${r.op} (a ${r.chunkSize}-byte chunk${r.mmapped ? ', mmapped' : ''}) mallinfo's uordblks moved by ${inUse} and hblkhd by ${mmapped}, ` +
        `not ${expected.inUse} and ${expected.mmapped}: another thread malloc'd or freed in the meantime`;
    }
  }
  return undefined;
}

export function verdictOf(op: 'malloc' | 'free', address: bigint, breakDelta: number, change: MapsDiff): KernelVerdict {
  if (op === 'malloc') {
    if (rangeHolding(change.mapped, address) !== undefined) return 'mmap';
    return breakDelta !== 0 ? 'brk' : 'served from memory it held';
  }
  if (rangeHolding(change.unmapped, address) !== undefined) return 'munmap';
  return breakDelta !== 0 ? 'brk' : 'no kernel call seen';
}

/** Runs of the plan to try for one whose past-top request reaches the kernel. */
const RUN_ATTEMPTS = 3;

const servedByHeldMemory = (rows: readonly KernelCallRow[]): boolean =>
  rows.some((r) => r.role === 'past-top' && !r.mmapped && r.breakDelta <= 0);

/** Runs the plan of `ops` once: a snapshot before the first step and after each. (Exported, with chooseOps, for tests that free memory between the two.) */
export function measurePlan({ ops, listed, thresholdBefore }: Choice): {
  rows: KernelCallRow[]; first: Snapshot; listed: Listed; thresholdBefore: Choice['thresholdBefore']; disturbed?: string;
} {
  const steps: PlanStep[] = [];
  const first = snapshotSteps(steps);
  const at: { op: number; header?: number; after: number }[] = [];
  const opStep: number[] = [];
  for (const op of ops) {
    const index = steps.length;
    opStep.push(index);
    if (op.op === 'malloc') steps.push({ op: 'malloc', size: op.size }, { op: 'header', step: index });
    else steps.push({ op: 'free', step: opStep[op.of] });
    at.push({ op: index, header: op.op === 'malloc' ? index + 1 : undefined, after: snapshotSteps(steps) });
  }
  const { steps: results } = runPlan(steps);

  const rows: KernelCallRow[] = [];
  const snapshots = [readSnapshot(results, first), ...at.map((a) => readSnapshot(results, a.after))];
  ops.forEach((op, k) => {
    const [before, after] = [snapshots[k], snapshots[k + 1]];
    const mallocAt = op.op === 'malloc' ? k : op.of;
    const address = results[opStep[mallocAt]].address!;
    const header = results[at[mallocAt].header!].header!;
    const breakDelta = Number(after.brk - before.brk);
    const mapsChange = diffMaps(before.regions, after.regions);
    rows.push({
      role: op.role,
      op: op.op,
      size: (ops[mallocAt] as { size: number }).size,
      chunkSize: header.size,
      mmapped: header.isMmapped,
      address,
      breakBefore: before.brk,
      breakAfter: after.brk,
      breakDelta,
      topBefore: before.top,
      topAfter: after.top,
      fastBefore: before.fast,
      fastAfter: after.fast,
      mapsChange,
      region: regionOf(address, op.op === 'malloc' ? after.regions : before.regions),
      verdict: verdictOf(op.op, address, breakDelta, mapsChange),
    });
  });
  const disturbed = otherThread(rows, snapshots, mmappedTailHere());
  return { rows, first: snapshots[0], listed, thresholdBefore, ...(disturbed === undefined ? {} : { disturbed }) };
}

/**
 * What a run measured: the rows of the run shown, the snapshot before its
 * first step, the free chunks listed and the mmap threshold read before it,
 * another thread's malloc or free seen during it, the runs it took and why
 * each earlier one was measured again, the page size.
 */
export interface Measured {
  rows: KernelCallRow[];
  first: Snapshot;
  listed: Listed;
  thresholdBefore: Choice['thresholdBefore'];
  disturbed?: string;
  runs: number;
  /** Why each run before the one shown was measured again. */
  again: string[];
  /** The mmap threshold each earlier run read before its plan, and the mmapped chunk it freed (which raises the threshold to its size). */
  earlier: { thresholdBefore: number; freedLarge?: number }[];
  page: number;
}

export function measure(): Measured {
  const page = pageSize();
  const again: string[] = [];
  // Where brk() is refused (main_arena non-contiguous), no run could move the break, and glibc fences off the old top
  // chunk when it maps new memory instead (two 16-byte chunks in use): mallinfo cannot tell another thread from that.
  const plan = () => {
    const { disturbed, ...m } = measurePlan(chooseOps(page));
    return disturbed === undefined || blockedBreak() !== undefined ? m : { ...m, disturbed };
  };
  let measured: ReturnType<typeof plan> & { disturbed?: string } = plan();
  // A chunk freed after the bins were read (a GC finalizer releasing a
  // buffer) can still serve past-top, and another thread's malloc or free
  // (mallinfo shows it) moves the top chunk under a step: such a run is
  // measured again.
  const why = (m: typeof measured): string | undefined => m.disturbed ??
    (servedByHeldMemory(m.rows) && blockedBreak() === undefined ? 'the past-top request was served from memory malloc held' : undefined);
  const earlier: Measured['earlier'] = [];
  for (let reason = why(measured); reason !== undefined && again.length + 1 < RUN_ATTEMPTS; reason = why(measured)) {
    again.push(reason);
    const freed = measured.rows.find((r) => r.role === 'free-large' && r.mmapped);
    earlier.push({ thresholdBefore: measured.thresholdBefore.bytes, ...(freed === undefined ? {} : { freedLarge: freed.chunkSize }) });
    measured = plan();
  }
  return { ...measured, runs: again.length + 1, again, earlier, page };
}
