// When does malloc switch to mmap, and how does the threshold move?
//
// glibc keeps the threshold in a variable no call can read, so it is
// inferred: a request whose chunk size reaches the threshold is mmapped
// when malloc has to ask the kernel, one below it grows the break. Every
// probe stays allocated until the run ends, because freeing an mmapped
// probe would itself raise the threshold being measured; only the chunks
// freed on purpose ("sources") move it.
import { Allocation } from '../../allocation';
import { blockedBreak } from '../../break-room';
import { HeapscopeError } from '../../errors';
import { rangeOf, shortBytes, withArticle } from '../../format';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { MINSIZE, requestToChunkSize } from '../../size-classes';
import { mallopt, pageSize } from '../../stats';
import { MallocPar } from '../../allocator/decode';
import { DEFAULT_MMAP_THRESHOLD, FreeRunRow, freeRunPlan, mallocPar, trimSummary } from '../measure';
import { tunable } from '../tunables';
import { Experiment, ExperimentContext } from '../types';

const KiB = 1024;
const MiB = 1024 * KiB;
/** glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit (4 MiB × sizeof(long)): the dynamic threshold's ceiling. */
const MMAP_THRESHOLD_MAX = 32 * MiB;
/** Probes never go above a 32 MiB chunk nor below a page. */
const MAX_PROBE = MMAP_THRESHOLD_MAX;
const MIN_PROBE = 4 * KiB;
/** Chunk sizes are multiples of 16, so a bracket this wide pins the threshold's chunk size. */
const RESOLUTION = 16;
/** Tries for one probe that malloc kept answering without the kernel. */
const ATTEMPTS = 6;
const SWEEP_STEP = 4 * KiB;
const SWEEP_COUNT = 16;
const MALLOPT_VALUE = 256 * KiB;

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

/** What the probes say: lo < threshold ≤ hi, both chunk sizes; a side is missing when no probe decided it. */
export interface Bracket {
  lo?: number;
  hi?: number;
}

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

/** Whether a located bracket holds `value`; an unlocated one holds nothing. */
export function holds(b: Bracket, value: number): boolean {
  if (b.lo === undefined && b.hi === undefined) return false;
  return (b.lo === undefined || b.lo < value) && (b.hi === undefined || value <= b.hi);
}

export function bracketText(b: Bracket): string {
  if (b.lo !== undefined && b.hi !== undefined) return `(${b.lo}, ${b.hi}]`;
  if (b.hi !== undefined) return `at most ${b.hi}`;
  if (b.lo !== undefined) return `above ${b.lo}`;
  return 'unknown (no probe reached the kernel)';
}

/** A chunk size's request: request2size(c − 8) = c for any multiple of 16. */
const requestFor = (chunk: number) => chunk - 8;

function servedBy(r: { mmapped: boolean; address: bigint; breakBefore: bigint; breakAfter: bigint; topBefore: number }): ServedBy {
  if (r.mmapped) return 'mmap';
  if (r.breakAfter > r.breakBefore) return 'brk';
  // The top chunk runs from break − top to the break.
  return r.address === r.breakBefore - BigInt(r.topBefore) ? 'top' : 'free chunk';
}

const conclusive = (r: ThresholdProbeRow) => r.servedBy === 'mmap' || r.servedBy === 'brk';

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
class Prober {
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

  trimRun(count: number, request: number): ThresholdTrimRow[] {
    const plan = freeRunPlan(count, request);
    const r = runPlan(plan.steps).steps;
    this.top = r[r.length - 1].mallinfo!.keepcost;
    const rows = plan.read(r).rows.map((row) => ({ ...row, phase: 'trim' as const }));
    this.rows.push(...rows);
    return rows;
  }

  /** Frees every probe, newest first. This raises the threshold: it runs last. */
  release(): void {
    for (const a of this.live.reverse()) if (!a.freed) a.free();
    this.live.length = 0;
  }
}

const served = (r: ThresholdProbeRow) =>
  r.servedBy === 'brk' ? `grew the break by ${shortBytes(r.breakAfter - r.breakBefore)}`
    : r.servedBy === 'mmap' ? `was mmapped (${withArticle(r.headerSize)}-byte mapping)`
      : r.servedBy === 'top' ? `came from the top chunk (${r.topBefore} bytes)`
        : 'came from a free chunk';

const probesOf = (rows: MmapThresholdRow[], phase: ThresholdPhase) =>
  rows.filter((r): r is ThresholdProbeRow => r.kind === 'probe' && r.phase === phase);

function probeCount(rows: MmapThresholdRow[], phase: ThresholdPhase): string {
  const probes = probesOf(rows, phase).filter((r) => r.role === 'probe');
  const idle = probes.filter((r) => !conclusive(r)).length;
  return `${probes.length} probes` + (idle > 0 ? `; ${idle} that malloc answered from memory it already held ${idle === 1 ? 'was' : 'were'} repeated` : '');
}

/**
 * The start bracket against mp_ as read before the probes: it must hold
 * mp_.mmap_threshold, and mp_.no_dyn_threshold says whether a setting
 * (tunable, MALLOC_MMAP_THRESHOLD_, mallopt) fixed it.
 */
function startVerdict(start: Bracket, par: MallocPar, tunableThreshold: number | undefined): { findings: string[]; surprises: string[] } {
  const threshold = Number(par.mmapThreshold);
  const findings = [`mp_.mmap_threshold, read from glibc before the probes, was ${threshold}; the bracket ${holds(start, threshold) ? 'holds' : 'does not hold'} it.`];
  const surprises: string[] = [];
  if (!holds(start, threshold)) {
    surprises.push(`The probes placed the threshold in ${bracketText(start)}, but glibc's mp_.mmap_threshold was ${threshold} before them.`);
  }
  if (tunableThreshold !== undefined) {
    findings.push(`The tunable glibc.malloc.mmap_threshold=${tunableThreshold} was in force; the bracket ${holds(start, tunableThreshold) ? 'holds' : 'does not hold'} it.`);
  } else if (par.noDynThreshold !== 0) {
    findings.push(
      'mp_.no_dyn_threshold was 1: a setting (MALLOC_MMAP_THRESHOLD_ or mallopt here, since no tunable was set) had fixed the threshold, ' +
        'so freeing mmapped chunks does not move it.',
    );
  } else if (threshold === DEFAULT_MMAP_THRESHOLD) {
    findings.push(`That is glibc's default threshold, ${DEFAULT_MMAP_THRESHOLD}.`);
  } else {
    surprises.push(
      `The threshold was not at glibc's default ${DEFAULT_MMAP_THRESHOLD} when this run started but ${threshold} (in ${bracketText(start)} by the probes), ` +
        'with no setting fixing it (mp_.no_dyn_threshold 0): something in this process had already freed an mmapped chunk and raised it.',
    );
  }
  return { findings, surprises };
}

const NOTHING_REACHED = 'No probe reached the kernel, so this run could not locate the threshold it started with.';

function measure(context: ExperimentContext): { rows: MmapThresholdRow[]; findings: string[]; surprises: string[] } {
  const p = new Prober();
  const findings: string[] = [];
  const surprises: string[] = [];
  const page = pageSize();
  const tunableThreshold = tunable('glibc.malloc.mmap_threshold');
  // What glibc holds before the probes: sysmalloc compares chunk sizes with mp_.mmap_threshold.
  const atStart = mallocPar();
  try {
    // (0) Where the threshold stands, before anything of this run is freed.
    const start = p.locate('start', [requestFor(DEFAULT_MMAP_THRESHOLD)]);
    findings.push(
      `Before this run freed anything, the mmap threshold lay in ${bracketText(start)} as a chunk size (the size malloc compares with it)` +
        `${evidence(p.rows, 'start', start)} (${probeCount(p.rows, 'start')}; every probe stayed allocated until the end).`,
    );
    if (start.lo === undefined && start.hi === undefined) {
      surprises.push(NOTHING_REACHED);
    } else {
      const verdict = startVerdict(start, atStart, tunableThreshold);
      findings.push(...verdict.findings);
      surprises.push(...verdict.surprises);
    }

    // (a) A sweep around it, all allocated before any is freed.
    const center = start.hi !== undefined && start.hi <= MAX_PROBE ? Math.round(start.hi / SWEEP_STEP) * SWEEP_STEP : DEFAULT_MMAP_THRESHOLD;
    const first = Math.max(center - 7 * SWEEP_STEP, SWEEP_STEP);
    const sweep = p.sweep(Array.from({ length: SWEEP_COUNT }, (_, i) => first + i * SWEEP_STEP));
    const mapped = sweep.filter((r) => r.mmapped);
    const heap = sweep.filter((r) => !r.mmapped);
    const count = (by: ServedBy) => heap.filter((r) => r.servedBy === by).length;
    findings.push(
      `A sweep of ${sweep.length} requests from ${shortBytes(first)} to ${shortBytes(sweep[sweep.length - 1].request)} in ${shortBytes(SWEEP_STEP)} steps, ` +
        `all allocated before any was freed: ${sizes(mapped)} were mmapped, ${sizes(heap)} came from the heap ` +
        `(${count('brk')} by growing the break, ${count('top')} from the top chunk, ${count('free chunk')} from free chunks).`,
    );
    if (mapped.length > 0) {
      const why = mapped.filter((r) => (start.hi === undefined || r.chunkSize >= start.hi) && r.topBefore < r.chunkSize + MINSIZE);
      findings.push(
        `${why.length} of the ${mapped.length} mmapped sweep requests had a chunk size at or above the threshold's upper bound ` +
          `(${start.hi ?? 'none found'}) and found the top chunk too small for them ` +
          `(${rangeOf(mapped.map((r) => r.topBefore))} bytes before each, below its chunk size + ${MINSIZE}).`,
      );
    }
    const swept = bracketOf(p.rows, 'sweep');
    findings.push(
      `The sweep places the threshold in ${bracketText(swept)}, ${consistent(swept, start) ? 'consistent with' : 'at odds with'} the ${bracketText(start)} found first.`,
    );
    for (const r of heap.filter((row) => start.hi !== undefined && row.chunkSize >= start.hi)) {
      const why = r.servedBy === 'top'
        ? `the top chunk held ${r.topBefore} bytes just before, enough for it, so malloc did not ask the kernel`
        : r.servedBy === 'free chunk'
          ? `a free chunk held it (the top had ${r.topBefore} bytes, the break did not move)`
          : `it grew the break by ${r.breakAfter - r.breakBefore} bytes`;
      surprises.push(`malloc(${r.request}) (chunk ${r.chunkSize}, not below the threshold's upper bound ${start.hi}) came from the heap: ${why}.`);
    }

    // What the sweep's frees did: they freed mmapped chunks.
    const sweepFreed = mapped.filter((r) => r.headerSize <= MMAP_THRESHOLD_MAX).map((r) => r.headerSize);
    const largestFreed = sweepFreed.length > 0 ? Math.max(...sweepFreed) : undefined;
    const afterSweep = p.locate('after-sweep', seedsOf(start, largestFreed));
    if (largestFreed !== undefined) {
      findings.push(
        `Freeing the sweep's ${mapped.length} mmapped chunks (the largest ${largestFreed} bytes) ` +
          `${consistent(afterSweep, start) ? 'left the threshold where it was' : 'moved the threshold'}: it then lay in ${bracketText(afterSweep)} ` +
          `(${probeCount(p.rows, 'after-sweep')}).`,
      );
    }

    // (b) The dynamic rise: free an mmapped chunk above the threshold.
    let sourceRequest = 1 * MiB;
    while (afterSweep.hi !== undefined && requestToChunkSize(sourceRequest) <= afterSweep.hi && sourceRequest < 16 * MiB) sourceRequest *= 2;
    const source = p.source('rise', sourceRequest);
    const rise = p.locate('rise', [sourceRequest, ...seedsOf(afterSweep, source.mmapped ? source.headerSize : undefined)]);
    const again = probesOf(p.rows, 'rise').find((r) => r.role === 'probe' && r.request === sourceRequest && conclusive(r));
    if (!source.mmapped) {
      findings.push(
        `The rise could not be shown: the ${shortBytes(sourceRequest)} request meant to be freed as an mmapped chunk ${served(source)}; ` +
          `afterwards the threshold lay in ${bracketText(rise)}.`,
      );
    } else {
      const moved = !consistent(rise, afterSweep);
      findings.push(
        `Freeing an mmapped ${shortBytes(sourceRequest)} request (${withArticle(source.headerSize)}-byte chunk) ${moved ? 'moved' : 'did not move'} the threshold: ` +
          (again !== undefined ? `the same ${shortBytes(sourceRequest)} request (chunk ${again.chunkSize}) ${served(again)}; ` : '') +
          `probes place it in ${bracketText(rise)}` +
          (holds(rise, source.headerSize) ? `, which holds the freed chunk's size ${source.headerSize}` : `, which does not hold the freed chunk's size ${source.headerSize}`) +
          ` (${probeCount(p.rows, 'rise')}).`,
      );
    }

    // (b') The trim threshold: free a run of heap blocks into the top until the break moves.
    trimFindings(p, rise, afterSweep, findings, page);

    // (c) The 32 MiB cap. What a chunk not rising the threshold means depends on whether (b) saw it rise at all.
    const dynamic = source.mmapped && holds(rise, source.headerSize) && !consistent(rise, afterSweep);
    let before = rise;
    const capSteps: [ThresholdPhase, number, string][] = [
      ['cap-64MiB', 64 * MiB, '64 MiB request'],
      ['cap-32MiB', MMAP_THRESHOLD_MAX - 24, 'chunk of exactly 32 MiB'],
      ['cap-below-32MiB', MMAP_THRESHOLD_MAX - page - 24, `chunk of 32 MiB − ${shortBytes(page)}`],
    ];
    for (const [phase, request, what] of capSteps) {
      const freed = p.source(phase, request);
      const after = p.locate(phase, seedsOf(before, freed.mmapped ? freed.headerSize : undefined));
      const word = `size word ${freed.rawSize}`;
      if (!freed.mmapped) {
        findings.push(`The ${what} (${request} bytes) meant to be freed as an mmapped chunk ${served(freed)}; afterwards the threshold lay in ${bracketText(after)}.`);
      } else if (consistent(after, before)) {
        findings.push(`Freeing an mmapped ${what} (${freed.headerSize} bytes, ${word}) left the threshold in ${bracketText(after)}.`);
        if (dynamic && freed.headerSize <= MMAP_THRESHOLD_MAX && freed.rawSize > BigInt(MMAP_THRESHOLD_MAX) && before.hi !== undefined && freed.headerSize > before.hi) {
          surprises.push(
            `The mmapped ${what} (${freed.headerSize} bytes) did not raise the threshold although its size is not above the ` +
              `${MMAP_THRESHOLD_MAX}-byte ceiling: its size word, flag bits included, is ${freed.rawSize}, which is.`,
          );
        }
      } else {
        findings.push(`Freeing an mmapped ${what} (${freed.headerSize} bytes, ${word}) moved the threshold to ${bracketText(after)}.`);
      }
      before = after;
    }
    const above = p.settle('cap-below-32MiB', 33 * MiB);
    findings.push(
      `A 33 MiB request (chunk ${above.chunkSize}) ${served(above)}` +
        (above.mmapped ? `: the threshold stayed at most ${before.hi ?? above.chunkSize}.` : '.'),
    );

    // (d) mallopt freezes it. It changes this process for good, so only in a child.
    if (context.isolated) {
      mallopt('M_MMAP_THRESHOLD', MALLOPT_VALUE);
      const freed = p.source('mallopt', 1 * MiB);
      const frozen = p.locate('mallopt', [512 * KiB, requestFor(MALLOPT_VALUE - RESOLUTION), requestFor(MALLOPT_VALUE)]);
      const half = probesOf(p.rows, 'mallopt').find((r) => r.role === 'probe' && r.request === 512 * KiB && conclusive(r));
      findings.push(
        `After mallopt(M_MMAP_THRESHOLD, ${MALLOPT_VALUE}), freeing ${freed.mmapped ? 'an mmapped' : 'a heap'} 1 MiB request (${withArticle(freed.headerSize)}-byte chunk) ` +
          `left the threshold in ${bracketText(frozen)}` +
          (half !== undefined ? `: a 512 KiB request (chunk ${half.chunkSize}) ${served(half)}` : '') +
          `; the bracket ${holds(frozen, MALLOPT_VALUE) ? 'holds' : 'does not hold'} the ${MALLOPT_VALUE} set.`,
      );
    } else {
      findings.push(
        `The mallopt(M_MMAP_THRESHOLD, ${MALLOPT_VALUE}) part did not run: this run was in-process (isolated: false), ` +
          'and mallopt would change this process\'s allocator settings for the rest of its life.',
      );
    }
  } finally {
    p.release();
  }
  // Probes below the threshold show it by growing the break; none did.
  const grew = p.rows.some((r) => r.kind === 'probe' && r.servedBy === 'brk');
  const blocked = grew ? undefined : blockedBreak();
  if (blocked !== undefined) {
    // Probes did reach sysmalloc; the sentence that says none did is replaced by the cause.
    const unseen = surprises.indexOf(NOTHING_REACHED);
    if (unseen >= 0) surprises.splice(unseen, 1);
    surprises.push(`No probe grew the break: ${blocked}. Without that, the threshold's lower side cannot be seen.`);
  }
  return { rows: p.rows, findings, surprises };
}

/** `: malloc(n) (chunk c) was mmapped and malloc(m) (chunk d) grew the break`, for the probes that set a bracket. */
function evidence(rows: MmapThresholdRow[], phase: ThresholdPhase, b: Bracket): string {
  const probes = probesOf(rows, phase).filter(conclusive);
  const hi = probes.find((r) => r.servedBy === 'mmap' && r.chunkSize === b.hi);
  const lo = probes.find((r) => r.servedBy === 'brk' && r.chunkSize === b.lo);
  const parts = [hi, lo].filter((r): r is ThresholdProbeRow => r !== undefined)
    .map((r) => `malloc(${r.request}) (chunk ${r.chunkSize}) ${r.servedBy === 'mmap' ? 'was mmapped' : 'grew the break'}`);
  return parts.length > 0 ? `: ${parts.join(' and ')}` : '';
}

/** `n (chunk sizes a to b)`, `1 (chunk size a)` or `0`. */
function sizes(rows: ThresholdProbeRow[]): string {
  const all = rows.map((r) => r.chunkSize);
  if (rows.length === 0) return '0';
  return rows.length === 1 ? `1 (chunk size ${all[0]})` : `${rows.length} (chunk sizes ${Math.min(...all)} to ${Math.max(...all)})`;
}

function consistent(a: Bracket, b: Bracket): boolean {
  const lo = Math.max(a.lo ?? 0, b.lo ?? 0);
  const hi = Math.min(a.hi ?? Infinity, b.hi ?? Infinity);
  return lo < hi;
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

function trimFindings(p: Prober, rise: Bracket, old: Bracket, findings: string[], page: number): void {
  // Blocks below the threshold (so they come from the heap) and above the tcache and fastbin sizes (so they merge).
  let request = 32 * KiB;
  if (rise.lo !== undefined && rise.lo < 2 * requestToChunkSize(request)) request = Math.floor(rise.lo / 2 / RESOLUTION) * RESOLUTION - 8;
  if (request < 2 * KiB) {
    findings.push(`The trim threshold was not probed: the mmap threshold (${bracketText(rise)}) leaves no room for heap blocks above the tcache sizes.`);
    return;
  }
  const chunk = requestToChunkSize(request);
  const reach = 2 * (rise.hi ?? rise.lo ?? MiB) + 512 * KiB;
  const count = Math.min(512, Math.ceil(reach / chunk));
  const rows = p.trimRun(count, request);
  const t = trimSummary(rows);
  const twice: Bracket = { lo: rise.lo === undefined ? undefined : 2 * rise.lo, hi: rise.hi === undefined ? undefined : 2 * rise.hi };
  if (t.firstTrim === undefined) {
    findings.push(
      `Trim threshold moving to twice the mmap threshold: not observed. Freeing ${count} blocks of ${shortBytes(request)} newest first, ` +
        `the top reached ${Math.max(...rows.map((r) => r.topAfter))} bytes and the break never moved.`,
    );
    return;
  }
  const trimmed: Bracket = { lo: t.keptTop, hi: t.trimmedTop };
  const agree = consistent(trimmed, twice);
  findings.push(
    `Freeing ${count} heap blocks of ${request} bytes newest first into the top, with the mmap threshold in ${bracketText(rise)}: ` +
      `tops of up to ${t.keptTop ?? 0} bytes stayed, and the break first moved down, by ${t.firstTrim.returned} bytes, at a free that made the top ` +
      `${t.firstTrim.mergedTop} bytes. So frees trim once the top is in ${bracketText(trimmed)}, which ` +
      `${agree ? 'overlaps' : 'does not overlap'} twice the mmap threshold, ${bracketText(twice)}.`,
  );
  // A top that a trim could have cut by at least a page, left alone: only the trim threshold kept it.
  const left = t.firstTrim.topAfter;
  if (old.hi !== undefined && t.keptTop !== undefined && t.keptTop > 2 * old.hi && t.keptTop >= left + page) {
    findings.push(
      `${withArticle(t.keptTop, true)}-byte top stayed, though twice the threshold before the rise was at most ${2 * old.hi} (2 × ${old.hi}) ` +
        `and a trim leaves a top of ${left} bytes: the trim threshold had moved up with the mmap threshold.`,
    );
  }
}

export const mmapThreshold: Experiment<MmapThresholdRow, 'mmap-threshold'> = {
  name: 'mmap-threshold',
  question: 'When does malloc switch to mmap, and how does the threshold move?',
  // It frees mmapped chunks (raising the threshold for good) and calls mallopt.
  isolatedByDefault: true,
  run(context) {
    return measure(context);
  },
};
