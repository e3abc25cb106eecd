// Does malloc call the kernel (brk / mmap), or serve from memory it already holds?
import { bytes, hex, withArticle } from '../../format';
import { MemoryRegion, parseMaps, regionOf } from '../../maps';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { MINSIZE, requestToChunkSize } from '../../size-classes';
import { pageSize } from '../../stats';
import { DEFAULT_MMAP_THRESHOLD, diffMaps, freeChunkSizes, mallocPar, MapsDiff, mmapThresholdNow, rangeHolding, topPadInForce } from '../measure';
import { tunable } from '../tunables';
import { Experiment, ExperimentContext } from '../types';

export type KernelVerdict = 'served from memory it held' | 'brk' | 'mmap' | 'munmap' | 'no kernel call seen';

/**
 * - `small`: a small request, expected to fit in memory malloc holds;
 * - `filler`: a request that uses up a large free chunk or most of the top
 *   chunk, so that `past-top` finds neither big enough;
 * - `past-top`: larger than the top chunk and any free chunk, two pages below the mmap threshold;
 * - `large`: 1 MiB, above the default mmap threshold;
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
  /** The map after the step compared with the map before it. */
  mapsChange: MapsDiff;
  /** The region holding the address after a malloc, before a free. */
  region?: MemoryRegion;
  verdict: KernelVerdict;
}

const SMALL = 64;
const LARGE = 1 << 20;
/** What a top filler leaves of the top chunk. */
const TOP_LEFT = 16 * 1024;

type Op = { role: KernelStepRole; op: 'malloc'; size: number } | { role: 'free-large'; op: 'free'; of: number };

/**
 * Picks the requests from a measurement. A request moves the break only
 * when neither a free chunk nor the top chunk holds it, and it must stay
 * below the mmap threshold; `past-top` is the largest request two pages
 * below it, which leaves the most room for chunks freed between the
 * measurement and the plan. A top chunk within a page of it is cut down by a filler
 * to TOP_LEFT; free chunks that could serve that filler or `past-top`
 * instead are used up first by exact-size fillers (an exact fit is taken
 * from its bin before the top chunk is touched).
 */
function chooseOps(page: number): Op[] {
  // What sysmalloc compares with, whoever set it (default, tunable, environment, mallopt, a free that raised it).
  const threshold = Number(mallocPar().mmapThreshold);
  const pastTop = requestToChunkSize(Math.max(threshold - 2 * page, page) - 8);
  const free = freeChunkSizes();
  // Read last, right before the plan: the filler arithmetic needs today's top.
  const top = runPlan([{ op: 'mallinfo' }]).steps[0].mallinfo!.keepcost;
  const topFiller = top + page > pastTop ? top - TOP_LEFT : undefined;
  const cutoff = Math.min(pastTop, topFiller ?? pastTop);
  const ops: Op[] = [{ role: 'small', op: 'malloc', size: SMALL }];
  for (const size of free.filter((f) => f >= cutoff)) ops.push({ role: 'filler', op: 'malloc', size: size - 8 });
  if (topFiller !== undefined) ops.push({ role: 'filler', op: 'malloc', size: topFiller - 8 });
  ops.push({ role: 'past-top', op: 'malloc', size: pastTop - 8 });
  ops.push({ role: 'large', op: 'malloc', size: LARGE });
  ops.push({ role: 'free-large', op: 'free', of: ops.length - 1 });
  return ops;
}

interface Snapshot {
  top: number;
  brk: bigint;
  regions: MemoryRegion[];
}

function snapshotSteps(steps: PlanStep[]): number {
  steps.push({ op: 'mallinfo' }, { op: 'break' }, { op: 'maps' });
  return steps.length - 3;
}

function readSnapshot(results: StepResult[], at: number): Snapshot {
  return { top: results[at].mallinfo!.keepcost, brk: results[at + 1].programBreak!, regions: parseMaps(results[at + 2].maps!) };
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

function measure(ops: Op[]): { rows: KernelCallRow[]; first: Snapshot } {
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
  let before = readSnapshot(results, first);
  ops.forEach((op, k) => {
    const after = readSnapshot(results, at[k].after);
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
      mapsChange,
      region: regionOf(address, op.op === 'malloc' ? after.regions : before.regions),
      verdict: verdictOf(op.op, address, breakDelta, mapsChange),
    });
    before = after;
  });
  return { rows, first: readSnapshot(results, first) };
}

function heapChange(r: KernelCallRow): string {
  const grown = r.mapsChange.changed.find((c) => c.after.kind === 'heap');
  return grown === undefined ? '' : `[heap] went ${bytes(grown.before.size)} → ${bytes(grown.after.size)}; `;
}

function breakNote(r: KernelCallRow): string {
  return r.breakDelta === 0 ? `the break stayed at ${hex(r.breakAfter)}` : `the break moved by ${r.breakDelta} bytes`;
}

function mapsNote(r: KernelCallRow): string {
  const elsewhere = r.mapsChange.mapped.reduce((n, m) => n + m.size, 0);
  return elsewhere === 0 ? 'no mapping appeared' : `no new mapping holds it (${elsewhere} bytes were mapped elsewhere meanwhile)`;
}

function describeRow(r: KernelCallRow): string {
  const call = r.op === 'malloc' ? `malloc(${r.size})` : `free() of the malloc(${r.size})`;
  const why = r.role === 'filler' ? ' (a filler, to leave no free or top chunk big enough for the next request)' : '';
  const topMove = `the top chunk went ${r.topBefore} → ${r.topAfter} B`;
  switch (r.verdict) {
    case 'served from memory it held': {
      const from = r.topAfter === r.topBefore - r.chunkSize ? 'carved from the top chunk'
        : r.topAfter === r.topBefore ? 'the top chunk untouched, so from a free chunk' : 'from memory malloc held';
      return `${call}${why}, ${withArticle(r.chunkSize)}-byte chunk at ${hex(r.address)}, was served from memory malloc already held ` +
        `(${from}): ${breakNote(r)}, ${mapsNote(r)}, and ${topMove}.`;
    }
    case 'brk':
      return r.breakDelta > 0
        ? `${call}${why} needed ${withArticle(r.chunkSize)}-byte chunk, ` +
          (r.chunkSize > r.topBefore ? `more than the ${r.topBefore}-byte top chunk` : `which with MINSIZE more did not fit the ${r.topBefore}-byte top chunk`) +
          ': the break moved ' +
          `${hex(r.breakBefore)} → ${hex(r.breakAfter)} (+${bytes(r.breakDelta)}): brk; ${heapChange(r)}${topMove}.`
        : `${call} moved the break down ${hex(r.breakBefore)} → ${hex(r.breakAfter)} (${bytes(r.breakDelta)}): ` +
          `the heap was trimmed with brk; ${topMove}.`;
    case 'mmap': {
      const range = rangeHolding(r.mapsChange.mapped, r.address)!;
      return `${call} got ${withArticle(bytes(r.chunkSize))} chunk at ${hex(r.address)} in ${bytes(range.size)} newly mapped at ` +
        `${hex(range.start)}–${hex(range.end)} (${r.region?.kind ?? 'unknown'} ${r.region?.perms ?? ''}): mmap; ${breakNote(r)}.`;
    }
    case 'munmap': {
      const range = rangeHolding(r.mapsChange.unmapped, r.address)!;
      return `${call} removed ${bytes(range.size)} of mappings at ${hex(range.start)}–${hex(range.end)}: munmap; ${breakNote(r)}.`;
    }
    case 'no kernel call seen':
      return `${call} left the break at ${hex(r.breakAfter)} and the mappings around ${hex(r.address)} as they were: ` +
        `no kernel call seen; ${topMove}.`;
  }
}

export const kernelCalls: Experiment<KernelCallRow, 'kernel-calls'> = {
  name: 'kernel-calls',
  question: 'Does malloc call the kernel (brk / mmap), or serve from memory it already holds?',
  // Freeing the 1 MiB mmapped chunk raises the dynamic mmap threshold for the rest of the process.
  isolatedByDefault: true,
  run(context: ExperimentContext) {
    const page = pageSize();
    // A chunk freed after the bins were read (a GC finalizer releasing a
    // buffer) can still serve past-top; such a run is measured again.
    let measured = measure(chooseOps(page));
    let runs = 1;
    while (runs < RUN_ATTEMPTS && servedByHeldMemory(measured.rows)) {
      measured = measure(chooseOps(page));
      runs++;
    }
    const { rows, first } = measured;
    const findings = rows.map(describeRow);
    if (runs > 1) {
      findings.push(
        `In run${runs > 2 ? `s 1–${runs - 1}` : ' 1'} of this plan the past-top request was served from memory malloc held: a free chunk big enough ` +
          `reached main_arena's bins after they were read, so the plan was measured again; run ${runs} is shown.`,
      );
    }
    const surprises: string[] = [];

    const heap = first.regions.find((r) => r.kind === 'heap');
    const where = context.isolated ? 'this fresh child process' : 'this process';
    findings.push(heap === undefined
      ? `Before the first malloc of the plan, ${where} had no [heap] region; the break was at ${hex(first.brk)}.`
      : `Before the first malloc of the plan, ${where} already had a [heap] of ${bytes(heap.size)} ` +
        `(${hex(heap.start)}–${hex(heap.end)}, break at ${hex(first.brk)}): ` +
        (context.isolated ? "Node's start-up and loading heapscope had grown it" : 'it had grown before this experiment ran') +
        ', so its very first growth happened before anything here could watch.');

    const pad = topPadInForce();
    const grew = rows.find((r) => r.breakDelta > 0 && !r.mmapped);
    if (grew === undefined) {
      findings.push(`The break never moved up in this run: every heap request fit in memory malloc held (largest top chunk seen ${bytes(Math.max(...rows.map((r) => r.topBefore)))}).`);
    } else {
      const missing = grew.chunkSize - grew.topBefore;
      const extra = grew.breakDelta - missing;
      const rest = extra - pad;
      findings.push(
        `The first break move seen in this run was +${bytes(grew.breakDelta)} for malloc(${grew.size}): its ${grew.chunkSize}-byte chunk ` +
          `was ${missing} bytes more than the ${grew.topBefore}-byte top chunk, so brk took ${extra} bytes beyond what was missing, ` +
          `${bytes(pad)} (mp_.top_pad, read from glibc) plus ${rest} bytes` +
          (rest >= MINSIZE && rest < MINSIZE + page ? ` (MINSIZE ${MINSIZE} and rounding up to ${withArticle(page)}-byte page).` : '.'),
      );
      if (rest < MINSIZE || rest >= MINSIZE + page) {
        surprises.push(
          `The first heap growth took ${extra} bytes beyond what the request was missing; glibc's rule (top pad ${pad} + MINSIZE ${MINSIZE}, ` +
            `rounded up to ${withArticle(page)}-byte page) allows ${pad + MINSIZE}–${pad + MINSIZE + page - 1}.`,
        );
      }
    }

    // Splitting the top chunk must leave at least MINSIZE in it, so a chunk needs chunk + MINSIZE of top.
    for (const r of rows.filter((row) => row.op === 'malloc' && !row.mmapped && row.breakDelta > 0)) {
      if (r.chunkSize + MINSIZE > r.topBefore) {
        if (r.chunkSize <= r.topBefore) {
          surprises.push(
            `malloc(${r.size}) moved the break although its ${r.chunkSize}-byte chunk fit the ${r.topBefore}-byte top chunk: ` +
              `the top chunk would have kept ${r.topBefore - r.chunkSize} bytes, less than MINSIZE (${MINSIZE}).`,
          );
        }
        continue;
      }
      surprises.push(`malloc(${r.size}) moved the break by ${r.breakDelta} bytes although the ${r.topBefore}-byte top chunk held its ${r.chunkSize}-byte chunk and MINSIZE more.`);
    }
    const pastTop = rows.find((r) => r.role === 'past-top')!;
    if (!pastTop.mmapped && pastTop.breakDelta <= 0) {
      surprises.push(
        `malloc(${pastTop.size}) was chosen to overflow the top chunk and every free chunk in main_arena's bins, yet the break did not move: ` +
          (pastTop.chunkSize + MINSIZE <= pastTop.topBefore
            ? `the top chunk had grown to ${pastTop.topBefore} bytes by then.`
            : `${withArticle(pastTop.chunkSize)}-byte or larger free chunk reached main_arena's bins after they were read and before the plan ran ` +
              `(fillers had taken every one listed; the top chunk went ${pastTop.topBefore} → ${pastTop.topAfter} B).`),
      );
    }
    const large = rows.find((r) => r.role === 'large')!;
    if (pastTop.mmapped || !large.mmapped) {
      const threshold = mmapThresholdNow();
      if (pastTop.mmapped) {
        surprises.push(`malloc(${pastTop.size}), below glibc's default ${bytes(DEFAULT_MMAP_THRESHOLD)} mmap threshold, was mmapped: ${threshold}.`);
      }
      if (!large.mmapped) {
        surprises.push(
          `malloc(${bytes(LARGE)}), above glibc's default ${bytes(DEFAULT_MMAP_THRESHOLD)} mmap threshold, came from the heap (${large.verdict}), ` +
            `its ${large.chunkSize}-byte chunk below the threshold: ${threshold}.`,
        );
      }
    }
    const freed = rows.find((r) => r.role === 'free-large')!;
    if (large.mmapped && freed.verdict !== 'munmap') {
      surprises.push(`free() of the mmapped ${large.chunkSize}-byte chunk did not remove its mapping (${freed.verdict}).`);
    }
    return { rows, findings, surprises };
  },
};
