// Measurement helpers shared by more than one experiment.
import { subtractRanges } from '../address-ranges';
import { MallocPar } from '../allocator/decode';
import { liveMallocPar } from '../allocator/live-par';
import { ArenaBins } from '../allocator/bins';
import { bins } from '../allocator-state';
import { MemoryRegion } from '../maps';
import { PlanStep, runPlan, StepResult } from '../plan';
import { GlibcLayout, KNOWN_GLIBC_VERSIONS, layoutFor } from '../allocator/layouts';
import { MmappedTail, requestToChunkSize } from '../size-classes';
import { glibcVersion } from '../stats';

/** The value seen most often (the first of equals); undefined for none. */
export function mostCommon(values: number[]): number | undefined {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
}

/**
 * glibc's DEFAULT_TOP_PAD on Linux (sysdeps/generic/malloc-machine.h): what
 * sysmalloc asks for beyond a request when it grows main_arena with brk.
 * Experiments compare it with the pad they measure, never assume it.
 */
export const DEFAULT_TOP_PAD = 128 * 1024;

/**
 * glibc's DEFAULT_MMAP_THRESHOLD_MIN and DEFAULT_TRIM_THRESHOLD (malloc.c):
 * where the dynamic mmap threshold and the trim threshold start. Findings
 * compare measurements with them; they are not the thresholds in force.
 */
export const DEFAULT_MMAP_THRESHOLD = 128 * 1024;

export const DEFAULT_TRIM_THRESHOLD = 128 * 1024;

/**
 * This process's glibc's layout, or undefined for a release whose layout
 * was not read: the experiments that run there (layout, chunk-sizes,
 * paging, arenas) then say nothing that needs it.
 */
export function layoutHere(): GlibcLayout | undefined {
  const version = glibcVersion();
  return KNOWN_GLIBC_VERSIONS.includes(version) ? layoutFor(version) : undefined;
}

/**
 * GlibcLayout.mmappedTail of this process's glibc; 0 (the rule of 2.42 and
 * before) for a release whose layout was not read, where a chunk that
 * breaks the rule is then a surprise that says so.
 */
export function mmappedTailHere(): MmappedTail {
  return layoutHere()?.mmappedTail ?? 0;
}

/** glibc's mp_ (struct malloc_par) as it is now, read from its own memory. */
export function mallocPar(): MallocPar {
  return liveMallocPar();
}

/** A sentence: mp_'s mmap threshold now, and whether glibc may still move it. */
export function mmapThresholdNow(): string {
  const par = mallocPar();
  return `mp_.mmap_threshold, read after the run, is ${par.mmapThreshold} bytes, ` +
    (par.noDynThreshold !== 0
      ? 'fixed by a setting (mp_.no_dyn_threshold is 1: a tunable, MALLOC_MMAP_THRESHOLD_ or mallopt set it)'
      : 'still dynamic (mp_.no_dyn_threshold is 0: each free of a larger mmapped chunk raises it)');
}

/** The top pad in force: mp_.top_pad, whoever set it (default, tunable, MALLOC_TOP_PAD_, mallopt). */
export function topPadInForce(): number {
  return Number(mallocPar().topPad);
}

/** A half-open address range [start, end). */
export interface AddressRange {
  start: bigint;
  end: bigint;
  size: number;
}

/** What changed between two parsed snapshots of the process map. */
export interface MapsDiff {
  /** Regions that are new and overlap nothing that went away. */
  added: MemoryRegion[];
  /** Regions that went away and overlap nothing new. */
  removed: MemoryRegion[];
  /**
   * A region replaced by an overlapping one: the same mapping grown,
   * shrunk, split or re-protected. The kernel merges a new anonymous
   * mapping with an adjacent one of the same permissions, so an mmap often
   * shows up here rather than in `added`: `mapped` says which bytes are new.
   */
  changed: { before: MemoryRegion; after: MemoryRegion }[];
  /** Addresses mapped after but not before. */
  mapped: AddressRange[];
  /** Addresses mapped before but not after. */
  unmapped: AddressRange[];
}

function sameRegion(a: MemoryRegion, b: MemoryRegion): boolean {
  return a.start === b.start && a.end === b.end && a.perms === b.perms && a.path === b.path && a.offset === b.offset;
}

function overlaps(a: { start: bigint; end: bigint }, b: { start: bigint; end: bigint }): boolean {
  return a.start < b.end && b.start < a.end;
}

function range(start: bigint, end: bigint): AddressRange {
  return { start, end, size: Number(end - start) };
}

/** The address ranges `regions` (sorted, as parsed) cover, adjacent regions merged. */
function covered(regions: readonly MemoryRegion[]): AddressRange[] {
  const out: AddressRange[] = [];
  for (const r of regions) {
    const last = out[out.length - 1];
    if (last !== undefined && last.end === r.start) out[out.length - 1] = range(last.start, r.end);
    else out.push(range(r.start, r.end));
  }
  return out;
}

/** Compares two snapshots of the map (each as parseMaps returns it). */
/**
 * What was measured of why the top chunk a step grew the heap from was not
 * the one read before it: malloc_consolidate where mallinfo's fastbin bytes
 * (fsmblks) dropped in the step, else that nothing measured tells.
 */
export function topChangeCause(step: { fastBefore?: number; fastAfter?: number }): string {
  const { fastBefore, fastAfter } = step;
  return fastBefore !== undefined && fastAfter !== undefined && fastAfter < fastBefore
    ? `malloc_consolidate ran in it: mallinfo's fastbin bytes went ${fastBefore} → ${fastAfter}, and fastbin chunks beside the top chunk merge into it`
    : 'nothing measured here says what changed it';
}

export function diffMaps(before: readonly MemoryRegion[], after: readonly MemoryRegion[]): MapsDiff {
  const gone = before.filter((b) => !after.some((a) => sameRegion(a, b)));
  const fresh = after.filter((a) => !before.some((b) => sameRegion(a, b)));
  const changed: MapsDiff['changed'] = [];
  for (const a of fresh) {
    for (const b of gone) if (overlaps(a, b)) changed.push({ before: b, after: a });
  }
  return {
    added: fresh.filter((a) => !gone.some((b) => overlaps(a, b))),
    removed: gone.filter((b) => !fresh.some((a) => overlaps(a, b))),
    changed,
    mapped: subtractRanges(covered(after), covered(before)).map((r) => range(r.start, r.end)),
    unmapped: subtractRanges(covered(before), covered(after)).map((r) => range(r.start, r.end)),
  };
}

/** The range in `ranges` holding `address`, if any. */
export function rangeHolding(ranges: readonly AddressRange[], address: bigint): AddressRange | undefined {
  return ranges.find((r) => r.start <= address && address < r.end);
}

/**
 * One block of a run allocated back to back and then freed newest first,
 * so that (when the blocks came from the top chunk) each free merges the
 * block into the top: what free's trim check sees, step by step.
 */
export interface FreeRunRow {
  kind: 'free-run';
  /** The block's place in allocation order; the run is freed from the last one down. */
  block: number;
  request: number;
  /** From the block's header. */
  chunkSize: number;
  address: bigint;
  /** The chunk ended where the top chunk began (break − top), so the free merged it into the top. */
  besideTop: boolean;
  /** main_arena's top chunk (mallinfo keepcost) before and after the free. */
  topBefore: number;
  topAfter: number;
  /** The top the free's trim check saw: topBefore + chunkSize when the block merged into it, else topBefore. */
  mergedTop: number;
  breakBefore: bigint;
  breakAfter: bigint;
  /** Bytes the break moved down during this free (0 when it stayed). */
  returned: number;
}

export interface FreeRunResult {
  rows: FreeRunRow[];
  breakAtStart: bigint;
  topAtStart: number;
  /** After the last block was allocated, before the first free. */
  breakAllocated: bigint;
  topAllocated: number;
}

/**
 * The size of every chunk in main_arena's bins (fastbins, unsorted, small
 * and large), read from glibc's own lists: fillers of exactly these sizes
 * take them out of the way (malloc_info gives only each bin's smallest and
 * largest, which left the unsorted bin's bigger chunks in place). Largest
 * first. From `main`, main_arena's bins when the caller decoded them,
 * else from a snapshot taken now.
 */
export function freeChunkSizes(main: ArenaBins | undefined = bins().arenas.find((a) => a.kind === 'main')): number[] {
  if (main === undefined) return [];
  // The fastbins' chunks first: a large-bin request would merge them with
  // their free neighbours (malloc_consolidate) before their fillers came.
  // Then largest first: a filler then finds its own chunk whole, where a
  // smaller one could have split it (the last_remainder rule) and left a
  // piece behind.
  const sizes = (list: typeof main.fastbins) => list.flatMap((b) => b.chunks.map((c) => c.size)).sort((a, b) => b - a);
  return [...sizes(main.fastbins), ...sizes([...main.unsorted, ...main.smallbins, ...main.largebins])];
}

/**
 * The steps of a free run of `count` blocks of `request` bytes, and how to
 * read them back. The blocks must come from the top chunk for their frees
 * to reach it; a free chunk in the bins (Node frees some megabytes at
 * times) would serve them instead, so exact-size fillers take every free
 * chunk that could hold one block first. They stay allocated until the
 * plan's end. (Fillers only for chunks of 16 blocks or more left the
 * smaller ones to the run: in one child of a hundred, 18 of 81 blocks came
 * from them, and the top never reached the trim threshold.)
 */
export function freeRunPlan(count: number, request: number): { steps: PlanStep[]; read(results: readonly StepResult[]): FreeRunResult } {
  const steps: PlanStep[] = [];
  for (const size of freeChunkSizes().filter((f) => f >= requestToChunkSize(request))) steps.push({ op: 'malloc', size: size - 8 });
  const start = steps.length;
  steps.push({ op: 'break' }, { op: 'mallinfo' });
  const blocks: number[] = [];
  for (let i = 0; i < count; i++) {
    blocks.push(steps.length);
    steps.push({ op: 'malloc', size: request }, { op: 'header', step: steps.length });
  }
  const allocated = steps.length;
  steps.push({ op: 'break' }, { op: 'mallinfo' });
  const frees: number[] = [];
  for (let i = count - 1; i >= 0; i--) {
    frees.push(steps.length);
    steps.push({ op: 'free', step: blocks[i] }, { op: 'break' }, { op: 'mallinfo' });
  }
  const read = (results: readonly StepResult[]): FreeRunResult => {
    const top = (at: number) => results[at].mallinfo!.keepcost;
    const brk = (at: number) => results[at].programBreak!;
    let breakBefore = brk(allocated);
    let topBefore = top(allocated + 1);
    const rows: FreeRunRow[] = [];
    frees.forEach((at, k) => {
      const block = count - 1 - k;
      const header = results[blocks[block] + 1].header!;
      const breakAfter = brk(at + 1);
      const topAfter = top(at + 2);
      const besideTop = header.address + BigInt(header.size) === breakBefore - BigInt(topBefore);
      rows.push({
        kind: 'free-run',
        block,
        request,
        chunkSize: header.size,
        address: results[blocks[block]].address!,
        besideTop,
        topBefore,
        topAfter,
        mergedTop: besideTop ? topBefore + header.size : topBefore,
        breakBefore,
        breakAfter,
        returned: Number(breakBefore - breakAfter),
      });
      breakBefore = breakAfter;
      topBefore = topAfter;
    });
    return { rows, breakAtStart: brk(start), topAtStart: top(start + 1), breakAllocated: brk(allocated), topAllocated: top(allocated + 1) };
  };
  return { steps, read };
}

/** Where the frees of a run moved the break down. */
export interface TrimSummary {
  /** The largest top a merging free left without the break moving. */
  keptTop?: number;
  /** The first free that moved the break down. */
  firstTrim?: FreeRunRow;
  /** The smallest top a free saw when it moved the break down. */
  trimmedTop?: number;
  trims: number;
  /** Bytes the break moved down over the whole run. */
  returned: number;
}

export function trimSummary(rows: readonly FreeRunRow[]): TrimSummary {
  const kept = rows.filter((r) => r.besideTop && r.returned === 0).map((r) => r.topAfter);
  const trimmed = rows.filter((r) => r.returned > 0);
  return {
    keptTop: kept.length > 0 ? Math.max(...kept) : undefined,
    firstTrim: trimmed[0],
    trimmedTop: trimmed.length > 0 ? Math.min(...trimmed.map((r) => r.mergedTop)) : undefined,
    trims: trimmed.length,
    returned: rows.reduce((sum, r) => sum + r.returned, 0),
  };
}

/** Runs to try for one whose blocks come from the top chunk. */
const FREE_RUN_ATTEMPTS = 3;

/** A free run measured until most of its blocks merged into the top, with the runs it took. */
export interface MeasuredFreeRun extends FreeRunResult {
  /** The runs measured; each earlier one merged too few blocks into the top (how many: `missed`). */
  attempts: number;
  missed: number[];
}

/**
 * Runs a free run, again (up to three runs) while more than `spare` of its
 * blocks (half of them unless said) did not merge into the top. The fillers
 * are sized from the bins read just before the plan; chunks freed in
 * between (the garbage collector frees the decode's own arrays, adjacent
 * ones merging into chunks of 100 KiB and more) can still serve the run,
 * whose blocks then never reach the top. A run whose purpose needs the top
 * to grow by nearly all its blocks says how many it can spare.
 */
export function measureFreeRun(count: number, request: number, spare = count / 2): MeasuredFreeRun {
  const missed: number[] = [];
  for (let attempt = 1; ; attempt++) {
    const plan = freeRunPlan(count, request);
    const run = plan.read(runPlan(plan.steps).steps);
    const beside = run.rows.filter((r) => r.besideTop).length;
    if (run.rows.length - beside <= spare || attempt >= FREE_RUN_ATTEMPTS) return { ...run, attempts: attempt, missed };
    missed.push(beside);
  }
}
