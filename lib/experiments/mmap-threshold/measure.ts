// The mmap-threshold experiment's measurement: the phases in order, each
// steered by the brackets the probes of the ones before it located.
//
// glibc keeps the threshold in a variable no call can read, so it is
// inferred: a request whose chunk size reaches the threshold is mmapped
// when malloc has to ask the kernel, one below it grows the break. Every
// probe stays allocated until the run ends (prober.ts); only the chunks
// freed on purpose ("sources") move it.
import { MallocPar } from '../../allocator/decode';
import { requestToChunkSize } from '../../size-classes';
import { mallopt, pageSize } from '../../stats';
import { DEFAULT_MMAP_THRESHOLD, mallocPar } from '../measure';
import { ExperimentContext } from '../types';
import { Bracket, holds } from './bracket';
import { KiB, MAX_PROBE, MiB, MMAP_THRESHOLD_MAX, MmapThresholdRow, Prober, requestFor, RESOLUTION, ThresholdProbeRow } from './prober';

export const SWEEP_STEP = 4 * KiB;
const SWEEP_COUNT = 16;
export const MALLOPT_VALUE = 256 * KiB;
/** (d) The first probe after mallopt: twice the threshold it sets. */
export const MALLOPT_PROBE = 512 * KiB;
/**
 * (c) The request probed after the caps, above the ceiling. No other probe
 * asks for it (locate's probes ask for a chunk size minus 8, the rise's and
 * mallopt's first ones for 16 MiB at most), so its rows are told apart by
 * their request.
 */
export const ABOVE_CEILING = 33 * MiB;
/** (c) The phases that free a chunk against the 32 MiB cap, in order. */
export const CAP_PHASES = ['cap-64MiB', 'cap-32MiB', 'cap-below-32MiB'] as const;
export type CapPhase = (typeof CAP_PHASES)[number];

/** What a cap phase frees: a 64 MiB request, a chunk mapped in exactly 32 MiB, one a page below (to 2.42 the chunk is its mapping; from 2.43, 16 bytes short). */
function capRequest(phase: CapPhase, page: number): number {
  return phase === 'cap-64MiB' ? 64 * MiB : phase === 'cap-32MiB' ? MMAP_THRESHOLD_MAX - 24 : MMAP_THRESHOLD_MAX - page - 24;
}

/**
 * First probes after a free: the earlier bracket's ends (they settle it if
 * the threshold did not move) and, around a freed mmapped chunk's size,
 * the two chunk sizes that settle it if the threshold moved to that size.
 */
function seedsOf(b: Bracket, freedChunk?: number): number[] {
  const chunks = [b.lo, b.hi];
  if (freedChunk !== undefined && !holds(b, freedChunk)) chunks.push(freedChunk - RESOLUTION, freedChunk);
  const seeds = chunks.filter((c): c is number => c !== undefined).map(requestFor);
  return seeds.length > 0 ? seeds : [requestFor(DEFAULT_MMAP_THRESHOLD)];
}

/** The largest mmapped chunk the sweep freed, up to the ceiling (a larger one moves nothing). */
export function largestFreed(sweep: readonly ThresholdProbeRow[]): number | undefined {
  const freed = sweep.filter((r) => r.mmapped && r.headerSize <= MMAP_THRESHOLD_MAX).map((r) => r.headerSize);
  return freed.length > 0 ? Math.max(...freed) : undefined;
}

/** Bytes the free run brings the top past twice the threshold: the blocks it can spare to chunks elsewhere. */
const TRIM_RUN_SLACK = 512 * KiB;

/**
 * (b') The free run's blocks: below the threshold (so they come from the
 * heap) and above the tcache and fastbin sizes (so they merge), enough to
 * reach twice the threshold and TRIM_RUN_SLACK more; none when the
 * threshold leaves no room for them. `spare`: the blocks that may come from
 * elsewhere with the top still reaching twice the threshold.
 */
function trimRunSize(rise: Bracket): { count: number; request: number; spare: number } | undefined {
  let request = 32 * KiB;
  if (rise.lo !== undefined && rise.lo < 2 * requestToChunkSize(request)) request = Math.floor(rise.lo / 2 / RESOLUTION) * RESOLUTION - 8;
  if (request < 2 * KiB) return undefined;
  const chunk = requestToChunkSize(request);
  const twice = 2 * (rise.hi ?? rise.lo ?? MiB);
  const count = Math.min(512, Math.ceil((twice + TRIM_RUN_SLACK) / chunk));
  return { count, request, spare: Math.max(0, Math.floor((count * chunk - twice) / chunk)) };
}

/** What a run measured: its rows, and glibc's mp_ and the page size as read before the first probe. */
export interface Measured {
  rows: MmapThresholdRow[];
  atStart: MallocPar;
  page: number;
  /** The free run's earlier runs, each with how many blocks merged into the top. */
  trimMissed: number[];
}

export function measure(context: ExperimentContext): Measured {
  const p = new Prober();
  const page = pageSize();
  // What glibc holds before the probes: sysmalloc compares chunk sizes with mp_.mmap_threshold.
  const atStart = mallocPar();
  try {
    // (0) Where the threshold stands, before anything of this run is freed.
    const start = p.locate('start', [requestFor(DEFAULT_MMAP_THRESHOLD)]);

    // (a) A sweep around it, all allocated before any is freed; its frees free mmapped chunks.
    const center = start.hi !== undefined && start.hi <= MAX_PROBE ? Math.round(start.hi / SWEEP_STEP) * SWEEP_STEP : DEFAULT_MMAP_THRESHOLD;
    const first = Math.max(center - 7 * SWEEP_STEP, SWEEP_STEP);
    const sweep = p.sweep(Array.from({ length: SWEEP_COUNT }, (_, i) => first + i * SWEEP_STEP));
    const afterSweep = p.locate('after-sweep', seedsOf(start, largestFreed(sweep)));

    // (b) The dynamic rise: free an mmapped chunk above the threshold.
    let sourceRequest = 1 * MiB;
    while (afterSweep.hi !== undefined && requestToChunkSize(sourceRequest) <= afterSweep.hi && sourceRequest < 16 * MiB) sourceRequest *= 2;
    const source = p.source('rise', sourceRequest);
    const rise = p.locate('rise', [sourceRequest, ...seedsOf(afterSweep, source.mmapped ? source.headerSize : undefined)]);

    // (b') The trim threshold: free a run of heap blocks into the top until the break moves.
    const run = trimRunSize(rise);
    if (run !== undefined) p.trimRun(run.count, run.request, run.spare);

    // (c) The 32 MiB cap: free chunks around it, then probe above it.
    let before = rise;
    for (const phase of CAP_PHASES) {
      const freed = p.source(phase, capRequest(phase, page));
      before = p.locate(phase, seedsOf(before, freed.mmapped ? freed.headerSize : undefined));
    }
    p.settle('cap-below-32MiB', ABOVE_CEILING);

    // (d) mallopt freezes it. It changes this process for good, so only in a child.
    if (context.isolated) {
      mallopt('M_MMAP_THRESHOLD', MALLOPT_VALUE);
      p.source('mallopt', 1 * MiB);
      p.locate('mallopt', [MALLOPT_PROBE, requestFor(MALLOPT_VALUE - RESOLUTION), requestFor(MALLOPT_VALUE)]);
    }
  } finally {
    p.release();
  }
  return { rows: p.rows, atStart, page, trimMissed: p.trimMissed };
}
