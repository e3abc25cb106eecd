// The mmap-threshold experiment's probes: one measured malloc per plan, kept
// allocated until the run ends (freeing an mmapped probe would itself raise
// the threshold being measured), and the rows they make; the bracket a
// phase's rows give.
import { Allocation } from '../../allocation';
import { HeapscopeError } from '../../errors';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { MINSIZE, requestToChunkSize } from '../../size-classes';
import { FreeRunRow, measureFreeRun } from '../measure';
import { Bracket } from './bracket';

export const KiB = 1024;
export const MiB = 1024 * KiB;
/** glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit (4 MiB × sizeof(long)): the dynamic threshold's ceiling. */
export const MMAP_THRESHOLD_MAX = 32 * MiB;
/** Probes never go above a 32 MiB chunk nor below a page. */
export const MAX_PROBE = MMAP_THRESHOLD_MAX;
const MIN_PROBE = 4 * KiB;
/** Chunk sizes are multiples of 16, so a bracket this wide pins the threshold's chunk size. */
export const RESOLUTION = 16;
/** Tries for one probe that malloc kept answering without the kernel. */
const ATTEMPTS = 6;

export type ThresholdPhase =
  | 'start' | 'sweep' | 'after-sweep' | 'rise' | 'cap-64MiB' | 'cap-32MiB' | 'cap-below-32MiB' | 'mallopt';

/**
 * - `probe`: measured and kept allocated until the run ends;
 * - `sweep`: measured with the whole sweep allocated, then freed with it;
 * - `source`: freed right after it was measured, to move the threshold;
 * - `eater`: takes the top chunk so that the next probe has to ask the kernel.
 */
export type ProbeRole = 'probe' | 'sweep' | 'source' | 'eater';

/** How malloc answered: its own mmap, a break grown for it, the top chunk, or a free chunk in a bin. */
export type ServedBy = 'mmap' | 'brk' | 'top' | 'free chunk';

export interface ThresholdProbeRow {
  kind: 'probe';
  phase: ThresholdPhase;
  role: ProbeRole;
  request: number;
  /** request2size(request): the size sysmalloc compares with the threshold. */
  chunkSize: number;
  /** The size in the chunk's header (a whole number of pages when mmapped). */
  headerSize: number;
  /** The header's size word with its flag bits. */
  rawSize: bigint;
  mmapped: boolean;
  address: bigint;
  /** main_arena's top chunk (mallinfo keepcost) just before and just after the malloc. */
  topBefore: number;
  topAfter: number;
  breakBefore: bigint;
  breakAfter: bigint;
  servedBy: ServedBy;
}

export interface ThresholdTrimRow extends FreeRunRow {
  phase: 'trim';
}

export type MmapThresholdRow = ThresholdProbeRow | ThresholdTrimRow;

/** Only a chunk that grew the break or was mmapped says on which side of the threshold it lies. */
export function bracketOf(rows: readonly MmapThresholdRow[], phase: ThresholdPhase): Bracket {
  const probes = rows.filter((r): r is ThresholdProbeRow =>
    r.kind === 'probe' && r.phase === phase && (r.role === 'probe' || r.role === 'sweep'));
  const below = probes.filter((r) => r.servedBy === 'brk').map((r) => r.chunkSize);
  const above = probes.filter((r) => r.servedBy === 'mmap').map((r) => r.chunkSize);
  return {
    lo: below.length > 0 ? Math.max(...below) : undefined,
    hi: above.length > 0 ? Math.min(...above) : undefined,
  };
}

/** A chunk size's request: request2size(c − 8) = c for any multiple of 16. */
export const requestFor = (chunk: number) => chunk - 8;

function servedBy(r: { mmapped: boolean; address: bigint; breakBefore: bigint; breakAfter: bigint; topBefore: number }): ServedBy {
  if (r.mmapped) return 'mmap';
  if (r.breakAfter > r.breakBefore) return 'brk';
  // The top chunk runs from break − top to the break.
  return r.address === r.breakBefore - BigInt(r.topBefore) ? 'top' : 'free chunk';
}

/** A probe that grew the break or was mmapped: one that says on which side of the threshold it lies. */
export const conclusive = (r: ThresholdProbeRow) => r.servedBy === 'mmap' || r.servedBy === 'brk';

/** The six steps around one measured malloc; `at` is the first. */
function measuredMalloc(steps: PlanStep[], request: number): number {
  const at = steps.length;
  steps.push({ op: 'mallinfo' }, { op: 'break' }, { op: 'malloc', size: request }, { op: 'header', step: at + 2 }, { op: 'break' }, { op: 'mallinfo' });
  return at;
}

function readMalloc(r: readonly StepResult[], at: number, phase: ThresholdPhase, role: ProbeRole, request: number): ThresholdProbeRow {
  if (r[at + 2].status !== 'ok') {
    const errno = r[at + 2].errno;
    throw new HeapscopeError('ERR_ALLOC_FAILED', `malloc(${request}) failed with errno ${errno}`, { errno, syscall: 'malloc' });
  }
  const header = r[at + 3].header!;
  const seen = {
    mmapped: header.isMmapped,
    address: header.address,
    topBefore: r[at].mallinfo!.keepcost,
    breakBefore: r[at + 1].programBreak!,
    breakAfter: r[at + 4].programBreak!,
  };
  return {
    kind: 'probe',
    phase,
    role,
    request,
    chunkSize: requestToChunkSize(request),
    headerSize: header.size,
    rawSize: header.rawSize,
    ...seen,
    address: r[at + 2].address!,
    topAfter: r[at + 5].mallinfo!.keepcost,
    servedBy: servedBy(seen),
  };
}

/** Probes, one plan each, keeping what they allocate so that no mmapped free moves the threshold. */
export class Prober {
  readonly rows: MmapThresholdRow[] = [];
  private readonly live: Allocation[] = [];
  /** main_arena's top at the end of the last plan. */
  private top?: number;

  /**
   * An eater for a probe of chunk size `nb`, when the last top seen could
   * serve it: it takes the top down to less than `nb`, in the probe's own
   * plan (between plans, JavaScript's own mallocs can grow the top again).
   * A request the top can hold never reaches sysmalloc, so the eater does
   * not depend on the threshold.
   */
  private eater(nb: number): number | undefined {
    if (this.top === undefined || this.top < nb + MINSIZE) return undefined;
    const leave = 64 + Math.min(4 * KiB, RESOLUTION * Math.floor(nb / (2 * RESOLUTION)));
    const chunk = this.top - leave;
    return chunk >= 2 * KiB ? requestFor(chunk) : undefined;
  }

  /** malloc(request) between two readings of the top and the break; a source is freed in the same plan. */
  probe(phase: ThresholdPhase, role: ProbeRole, request: number): ThresholdProbeRow {
    const steps: PlanStep[] = [];
    const eater = this.eater(requestToChunkSize(request));
    const e = eater === undefined ? undefined : measuredMalloc(steps, eater);
    const at = measuredMalloc(steps, request);
    if (role === 'source') steps.push({ op: 'free', step: at + 2 }, { op: 'mallinfo' });
    const { steps: r, kept } = runPlan(steps, { keep: true });
    this.live.push(...kept.values());
    this.top = r[r.length - 1].mallinfo!.keepcost;
    if (e !== undefined) this.rows.push(readMalloc(r, e, phase, 'eater', eater!));
    const row = readMalloc(r, at, phase, role, request);
    this.rows.push(row);
    return row;
  }

  /** Repeats a probe that malloc answered from memory it held, until it reaches the kernel. */
  settle(phase: ThresholdPhase, request: number): ThresholdProbeRow {
    let row = this.probe(phase, 'probe', request);
    for (let attempt = 1; attempt < ATTEMPTS && !conclusive(row); attempt++) row = this.probe(phase, 'probe', request);
    return row;
  }

  /** A chunk freed on purpose: retried while malloc served it from the top or a bin instead of mmapping it. */
  source(phase: ThresholdPhase, request: number): ThresholdProbeRow {
    let row = this.probe(phase, 'source', request);
    for (let attempt = 1; attempt < ATTEMPTS && !conclusive(row); attempt++) row = this.probe(phase, 'source', request);
    return row;
  }

  /**
   * Brackets the threshold: the seed requests first, then doubling up or
   * halving down until one probe grew the break and one was mmapped, then
   * bisection down to 16 bytes.
   */
  locate(phase: ThresholdPhase, seeds: number[]): Bracket {
    let lo: number | undefined;
    let hi: number | undefined;
    const note = (row: ThresholdProbeRow) => {
      if (row.servedBy === 'brk') lo = Math.max(lo ?? 0, row.chunkSize);
      if (row.servedBy === 'mmap') hi = Math.min(hi ?? Infinity, row.chunkSize);
    };
    for (const request of seeds) note(this.settle(phase, request));
    for (let c = lo; hi === undefined && c !== undefined && c < MAX_PROBE;) {
      c = Math.min(c * 2, MAX_PROBE);
      note(this.settle(phase, requestFor(c)));
    }
    for (let c = hi; lo === undefined && c !== undefined && c > MIN_PROBE;) {
      c = Math.max(c / 2 - ((c / 2) % RESOLUTION), MIN_PROBE);
      note(this.settle(phase, requestFor(c)));
    }
    while (lo !== undefined && hi !== undefined && hi - lo > RESOLUTION) {
      const before = [lo, hi];
      note(this.settle(phase, requestFor(lo + RESOLUTION * Math.floor((hi - lo) / (2 * RESOLUTION)))));
      if (before[0] === lo && before[1] === hi) break; // the probe never reached the kernel
    }
    return bracketOf(this.rows, phase);
  }

  /** The sweep: every request allocated and measured before any is freed. */
  sweep(requests: number[]): ThresholdProbeRow[] {
    const steps: PlanStep[] = [];
    const at = requests.map((size) => measuredMalloc(steps, size));
    for (let i = at.length - 1; i >= 0; i--) steps.push({ op: 'free', step: at[i] + 2 });
    steps.push({ op: 'mallinfo' });
    const { steps: r } = runPlan(steps);
    this.top = r[r.length - 1].mallinfo!.keepcost;
    const rows = requests.map((request, i) => readMalloc(r, at[i], 'sweep', 'sweep', request));
    this.rows.push(...rows);
    return rows;
  }

  /** The free run's earlier runs, each with how many blocks merged into the top; empty when the first was kept. */
  trimMissed: number[] = [];

  trimRun(count: number, request: number, spare: number): ThresholdTrimRow[] {
    const run = measureFreeRun(count, request, spare);
    this.trimMissed = run.missed;
    this.top = run.rows[run.rows.length - 1].topAfter;
    const rows = run.rows.map((row) => ({ ...row, phase: 'trim' as const }));
    this.rows.push(...rows);
    return rows;
  }

  /** Frees every probe, newest first. This raises the threshold: it runs last. */
  release(): void {
    for (const a of this.live.reverse()) if (!a.freed) a.free();
    this.live.length = 0;
  }
}

