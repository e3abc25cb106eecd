// What the mmap-threshold experiment says about its rows: the bracket each
// phase's probes located and the chunks freed between them, gathered once,
// then each finding and surprise a rule over them, in the phases' order.
import { MallocPar } from '../../allocator/decode';
import { blockedBreak } from '../../break-room';
import { rangeOf, shortBytes, withArticle } from '../../format';
import { MINSIZE } from '../../size-classes';
import { DEFAULT_MMAP_THRESHOLD, trimSummary, TrimSummary } from '../measure';
import { Rule, say } from '../rules';
import { Bracket, bracketText, consistent, holds, located } from './bracket';
import { ABOVE_CEILING, CAP_PHASES, CapPhase, largestFreed, MALLOPT_PROBE, MALLOPT_VALUE, SWEEP_STEP } from './measure';
import {
  bracketOf, conclusive, MMAP_THRESHOLD_MAX, MmapThresholdRow, ThresholdPhase, ThresholdProbeRow, ThresholdTrimRow,
} from './prober';

/** What the run read besides its rows. */
export interface Setting {
  /** glibc's mp_ as read before the probes. */
  atStart: MallocPar;
  /** glibc.malloc.mmap_threshold as GLIBC_TUNABLES set it (undefined: not set). */
  tunableThreshold: number | undefined;
  page: number;
  /** The run had a process of its own: the mallopt part ran. */
  isolated: boolean;
  /** The free run's earlier runs, each with how many blocks merged into the top (none: the first was kept). */
  trimMissed: number[];
}

/** One chunk freed against the 32 MiB cap, and the threshold before and after. */
interface Cap {
  what: string;
  freed: ThresholdProbeRow;
  before: Bracket;
  after: Bracket;
}

/** The rows, sorted by what the rules ask about. */
interface Facts extends Setting {
  rows: MmapThresholdRow[];
  /** Where the threshold stood before anything was freed (mp_.mmap_threshold as a number). */
  start: Bracket;
  threshold: number;
  /** The sweep's requests, mmapped and from the heap, and the bracket they give. */
  sweep: ThresholdProbeRow[];
  mapped: ThresholdProbeRow[];
  heap: ThresholdProbeRow[];
  swept: Bracket;
  largestFreed?: number;
  afterSweep: Bracket;
  /** The chunk freed to raise the threshold, the bracket after, and the same request probed again. */
  source: ThresholdProbeRow;
  rise: Bracket;
  again?: ThresholdProbeRow;
  /** The rise moved the threshold to the freed chunk's size: glibc's dynamic threshold at work. */
  dynamic: boolean;
  /** (b') The free run's rows (none when it did not run) and where its frees moved the break. */
  trim: ThresholdTrimRow[];
  trimmed: TrimSummary;
  caps: Cap[];
  /** The request above the ceiling, probed after the caps. */
  above: ThresholdProbeRow;
  mallopt?: { freed: ThresholdProbeRow; frozen: Bracket; half?: ThresholdProbeRow };
  /** Why the break never moved, when no probe grew it and brk() was refused. */
  blocked?: string;
}

const probesOf = (rows: MmapThresholdRow[], phase: ThresholdPhase) =>
  rows.filter((r): r is ThresholdProbeRow => r.kind === 'probe' && r.phase === phase);

/** The chunk a phase freed on purpose: the last try of its source. */
const sourceOf = (rows: MmapThresholdRow[], phase: ThresholdPhase) => probesOf(rows, phase).filter((r) => r.role === 'source').pop()!;

/** A phase's probe of `request` that reached the kernel, if one did. */
const probeOf = (rows: MmapThresholdRow[], phase: ThresholdPhase, request: number) =>
  probesOf(rows, phase).find((r) => r.role === 'probe' && r.request === request && conclusive(r));

function capWhat(phase: CapPhase, page: number): string {
  // A mapping of the size, not a chunk: from 2.43 the chunk is 16 bytes short of its mapping (GlibcLayout.mmappedTail).
  return phase === 'cap-64MiB' ? '64 MiB request' : phase === 'cap-32MiB' ? 'chunk mapped in exactly 32 MiB' : `chunk mapped in 32 MiB − ${shortBytes(page)}`;
}

function facts(rows: MmapThresholdRow[], setting: Setting): Facts {
  // The bracket each phase's locate found: the probe above the ceiling came after it.
  const beforeAbove = rows.filter((r) => !(r.kind === 'probe' && r.request === ABOVE_CEILING));
  const sweep = probesOf(rows, 'sweep');
  const mapped = sweep.filter((r) => r.mmapped);
  const afterSweep = bracketOf(rows, 'after-sweep');
  const source = sourceOf(rows, 'rise');
  const rise = bracketOf(rows, 'rise');
  let before = rise;
  const caps = CAP_PHASES.map((phase): Cap => {
    const cap = { what: capWhat(phase, setting.page), freed: sourceOf(rows, phase), before, after: bracketOf(beforeAbove, phase) };
    before = cap.after;
    return cap;
  });
  const trim = rows.filter((r): r is ThresholdTrimRow => r.kind === 'free-run');
  // Probes below the threshold show it by growing the break; when none did,
  // glibc's state is read now, after the probes were freed.
  const grew = rows.some((r) => r.kind === 'probe' && r.servedBy === 'brk');
  return {
    ...setting,
    rows,
    start: bracketOf(rows, 'start'),
    threshold: Number(setting.atStart.mmapThreshold),
    sweep,
    mapped,
    heap: sweep.filter((r) => !r.mmapped),
    swept: bracketOf(rows, 'sweep'),
    largestFreed: largestFreed(sweep),
    afterSweep,
    source,
    rise,
    again: probeOf(rows, 'rise', source.request),
    dynamic: source.mmapped && holds(rise, source.headerSize) && !consistent(rise, afterSweep),
    trim,
    trimmed: trimSummary(trim),
    caps,
    above: probesOf(rows, 'cap-below-32MiB').filter((r) => r.role === 'probe' && r.request === ABOVE_CEILING).pop()!,
    mallopt: setting.isolated
      ? { freed: sourceOf(rows, 'mallopt'), frozen: bracketOf(rows, 'mallopt'), half: probeOf(rows, 'mallopt', MALLOPT_PROBE) }
      : undefined,
    blocked: grew ? undefined : blockedBreak(),
  };
}

const served = (r: ThresholdProbeRow) =>
  r.servedBy === 'brk' ? `grew the break by ${shortBytes(r.breakAfter - r.breakBefore)}`
    : r.servedBy === 'mmap' ? `was mmapped (its header says ${r.headerSize} bytes)`
      : r.servedBy === 'top' ? `came from the top chunk (${r.topBefore} bytes)`
        : 'came from a free chunk';

function probeCount(rows: MmapThresholdRow[], phase: ThresholdPhase): string {
  const probes = probesOf(rows, phase).filter((r) => r.role === 'probe');
  const idle = probes.filter((r) => !conclusive(r)).length;
  return `${probes.length} probes` + (idle > 0 ? `; ${idle} that malloc answered from memory it already held ${idle === 1 ? 'was' : 'were'} repeated` : '');
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

const NOTHING_REACHED = 'No probe reached the kernel, so this run could not locate the threshold it started with.';

const FINDINGS: Rule<Facts>[] = [
  // (0) Where the threshold stood before anything was freed, and the probes that say so.
  ({ rows, start }) =>
    `Before this run freed anything, the mmap threshold lay in ${bracketText(start)} as a chunk size (the size malloc compares with it)` +
    `${evidence(rows, 'start', start)} (${probeCount(rows, 'start')}; every probe stayed allocated until the end).`,

  // If the probes located it: whether the bracket holds mp_.mmap_threshold as read before them.
  ({ start, threshold }) => located(start)
    ? `mp_.mmap_threshold, read from glibc before the probes, was ${threshold}; the bracket ${holds(start, threshold) ? 'holds' : 'does not hold'} it.`
    : undefined,

  // ...and what had set it: the tunable, another setting, or nothing (glibc's default; a surprise when not).
  ({ start, threshold, tunableThreshold, atStart }) => {
    if (!located(start)) return undefined;
    if (tunableThreshold !== undefined) {
      return `The tunable glibc.malloc.mmap_threshold=${tunableThreshold} was in force; the bracket ${holds(start, tunableThreshold) ? 'holds' : 'does not hold'} it.`;
    }
    if (atStart.noDynThreshold !== 0) {
      return 'mp_.no_dyn_threshold was 1: a setting (MALLOC_MMAP_THRESHOLD_ or mallopt here, since no tunable was set) had fixed the threshold, ' +
        'so freeing mmapped chunks does not move it.';
    }
    return threshold === DEFAULT_MMAP_THRESHOLD ? `That is glibc's default threshold, ${DEFAULT_MMAP_THRESHOLD}.` : undefined;
  },

  // (a) What the sweep's requests got.
  ({ sweep, mapped, heap }) => {
    const count = (by: ThresholdProbeRow['servedBy']) => heap.filter((r) => r.servedBy === by).length;
    return `A sweep of ${sweep.length} requests from ${shortBytes(sweep[0].request)} to ${shortBytes(sweep[sweep.length - 1].request)} in ${shortBytes(SWEEP_STEP)} steps, ` +
      `all allocated before any was freed: ${sizes(mapped)} were mmapped, ${sizes(heap)} came from the heap ` +
      `(${count('brk')} by growing the break, ${count('top')} from the top chunk, ${count('free chunk')} from free chunks).`;
  },

  // If some were mmapped: how many were at or above the start bracket and found the top chunk too small.
  ({ mapped, start }) => {
    if (!(mapped.length > 0)) return undefined;
    const why = mapped.filter((r) => (start.hi === undefined || r.chunkSize >= start.hi) && r.topBefore < r.chunkSize + MINSIZE);
    return `${why.length} of the ${mapped.length} mmapped sweep requests had a chunk size at or above the threshold's upper bound ` +
      `(${start.hi ?? 'none found'}) and found the top chunk too small for them ` +
      `(${rangeOf(mapped.map((r) => r.topBefore))} bytes before each, below its chunk size + ${MINSIZE}).`;
  },

  // Where the sweep places the threshold, against the start.
  ({ swept, start }) =>
    `The sweep places the threshold in ${bracketText(swept)}, ${consistent(swept, start) ? 'consistent with' : 'at odds with'} the ${bracketText(start)} found first.`,

  // If the sweep freed mmapped chunks below the ceiling: whether that moved the threshold.
  ({ rows, mapped, largestFreed, afterSweep, start }) => largestFreed === undefined ? undefined
    : `Freeing the sweep's ${mapped.length} mmapped chunks (the largest ${largestFreed} bytes) ` +
      `${consistent(afterSweep, start) ? 'left the threshold where it was' : 'moved the threshold'}: it then lay in ${bracketText(afterSweep)} ` +
      `(${probeCount(rows, 'after-sweep')}).`,

  // (b) If the chunk meant to raise the threshold was not mmapped, the rise
  // could not be shown; if it was, whether it moved the threshold to its size.
  ({ rows, source, rise, again, afterSweep }) => {
    if (!source.mmapped) {
      return `The rise could not be shown: the ${shortBytes(source.request)} request meant to be freed as an mmapped chunk ${served(source)}; ` +
        `afterwards the threshold lay in ${bracketText(rise)}.`;
    }
    const moved = !consistent(rise, afterSweep);
    return `Freeing an mmapped ${shortBytes(source.request)} request (${withArticle(source.headerSize)}-byte chunk) ${moved ? 'moved' : 'did not move'} the threshold: ` +
      (again !== undefined ? `the same ${shortBytes(source.request)} request (chunk ${again.chunkSize}) ${served(again)}; ` : '') +
      `probes place it in ${bracketText(rise)}` +
      (holds(rise, source.headerSize) ? `, which holds the freed chunk's size ${source.headerSize}` : `, which does not hold the freed chunk's size ${source.headerSize}`) +
      ` (${probeCount(rows, 'rise')}).`;
  },

  // If the free run was measured again because too few blocks reached the top, how often and why.
  ({ trimMissed: missed, trim }) => missed.length === 0 ? undefined
    : `Free run${missed.length > 1 ? 's' : ''} 1${missed.length > 1 ? `–${missed.length}` : ''} merged only ${missed.join(', ')} of ${trim.length} blocks ` +
      `into the top chunk (the rest had come from a free chunk below it), so the run was measured again; run ${missed.length + 1} is shown.`,

  // (b') If the threshold left no room for the free run's blocks, it did not
  // run; if the break never moved, say so; else where the frees trimmed,
  // against twice the mmap threshold.
  ({ trim, trimmed: t, rise }) => {
    if (trim.length === 0) return `The trim threshold was not probed: the mmap threshold (${bracketText(rise)}) leaves no room for heap blocks above the tcache sizes.`;
    const { request } = trim[0];
    if (t.firstTrim === undefined) {
      return `Trim threshold moving to twice the mmap threshold: not observed. Freeing ${trim.length} blocks of ${shortBytes(request)} newest first, ` +
        `the top reached ${Math.max(...trim.map((r) => r.topAfter))} bytes and the break never moved.`;
    }
    const range: Bracket = { lo: t.keptTop, hi: t.trimmedTop };
    const twice: Bracket = { lo: rise.lo === undefined ? undefined : 2 * rise.lo, hi: rise.hi === undefined ? undefined : 2 * rise.hi };
    return `Freeing ${trim.length} heap blocks of ${request} bytes newest first into the top, with the mmap threshold in ${bracketText(rise)}: ` +
      `tops of up to ${t.keptTop ?? 0} bytes stayed, and the break first moved down, by ${t.firstTrim.returned} bytes, at a free that made the top ` +
      `${t.firstTrim.mergedTop} bytes. So frees trim once the top is in ${bracketText(range)}, which ` +
      `${consistent(range, twice) ? 'overlaps' : 'does not overlap'} twice the mmap threshold, ${bracketText(twice)}.`;
  },

  // If a top that a trim could have cut by at least a page was left alone, above twice the threshold before the rise:
  // only the trim threshold, risen with the mmap threshold, kept it.
  ({ trimmed: t, afterSweep: old, page }) => {
    if (t.firstTrim === undefined) return undefined;
    const left = t.firstTrim.topAfter;
    return old.hi !== undefined && t.keptTop !== undefined && t.keptTop > 2 * old.hi && t.keptTop >= left + page
      ? `${withArticle(t.keptTop, true)}-byte top stayed, though twice the threshold before the rise was at most ${2 * old.hi} (2 × ${old.hi}) ` +
        `and a trim leaves a top of ${left} bytes: the trim threshold had moved up with the mmap threshold.`
      : undefined;
  },

  // (c) Each chunk freed against the cap: not mmapped, left the threshold, or moved it.
  ({ caps }) => caps.map(({ what, freed, before, after }) => {
    if (!freed.mmapped) {
      return `The ${what} (${freed.request} bytes) meant to be freed as an mmapped chunk ${served(freed)}; afterwards the threshold lay in ${bracketText(after)}.`;
    }
    const word = `size word ${freed.rawSize}`;
    return consistent(after, before)
      ? `Freeing an mmapped ${what} (${freed.headerSize} bytes, ${word}) left the threshold in ${bracketText(after)}.`
      : `Freeing an mmapped ${what} (${freed.headerSize} bytes, ${word}) moved the threshold to ${bracketText(after)}.`;
  }),

  // What a request above the ceiling got; if mmapped, the threshold stayed at most the last cap's bracket.
  ({ above, caps }) =>
    `A 33 MiB request (chunk ${above.chunkSize}) ${served(above)}` +
    (above.mmapped ? `: the threshold stayed at most ${caps[caps.length - 1].after.hi ?? above.chunkSize}.` : '.'),

  // (d) If the run had a process of its own: where the threshold stayed after mallopt and a free; if not, that the part did not run.
  ({ mallopt }) => mallopt !== undefined
    ? `After mallopt(M_MMAP_THRESHOLD, ${MALLOPT_VALUE}), freeing ${mallopt.freed.mmapped ? 'an mmapped' : 'a heap'} 1 MiB request (${withArticle(mallopt.freed.headerSize)}-byte chunk) ` +
      `left the threshold in ${bracketText(mallopt.frozen)}` +
      (mallopt.half !== undefined ? `: a 512 KiB request (chunk ${mallopt.half.chunkSize}) ${served(mallopt.half)}` : '') +
      `; the bracket ${holds(mallopt.frozen, MALLOPT_VALUE) ? 'holds' : 'does not hold'} the ${MALLOPT_VALUE} set.`
    : `The mallopt(M_MMAP_THRESHOLD, ${MALLOPT_VALUE}) part did not run: this run was in-process (isolated: false), ` +
      'and mallopt would change this process\'s allocator settings for the rest of its life.',
];

const SURPRISES: Rule<Facts>[] = [
  // If no probe of the start reached the kernel (unless a refused brk() says why, below).
  ({ start, blocked }) => !located(start) && blocked === undefined ? NOTHING_REACHED : undefined,

  // If the start bracket does not hold mp_.mmap_threshold as read before the probes.
  ({ start, threshold }) => located(start) && !holds(start, threshold)
    ? `The probes placed the threshold in ${bracketText(start)}, but glibc's mp_.mmap_threshold was ${threshold} before them.`
    : undefined,

  // If nothing had fixed the threshold and it was not glibc's default: something had raised it.
  ({ start, threshold, tunableThreshold, atStart }) =>
    located(start) && tunableThreshold === undefined && atStart.noDynThreshold === 0 && threshold !== DEFAULT_MMAP_THRESHOLD
      ? `The threshold was not at glibc's default ${DEFAULT_MMAP_THRESHOLD} when this run started but ${threshold} (in ${bracketText(start)} by the probes), ` +
        'with no setting fixing it (mp_.no_dyn_threshold 0): something in this process had already freed an mmapped chunk and raised it.'
      : undefined,

  // Each sweep request not below the start bracket's upper bound that still came from the heap.
  ({ heap, start }) => heap.filter((row) => start.hi !== undefined && row.chunkSize >= start.hi).map((r) => {
    const why = r.servedBy === 'top'
      ? `the top chunk held ${r.topBefore} bytes just before, enough for it, so malloc did not ask the kernel`
      : r.servedBy === 'free chunk'
        ? `a free chunk held it (the top had ${r.topBefore} bytes, the break did not move)`
        : `it grew the break by ${r.breakAfter - r.breakBefore} bytes`;
    return `malloc(${r.request}) (chunk ${r.chunkSize}, not below the threshold's upper bound ${start.hi}) came from the heap: ${why}.`;
  }),

  // Each mmapped cap chunk that left a dynamic threshold where it was though its size is under the ceiling:
  // its size word, flag bits included, is over it.
  ({ caps, dynamic }) => caps
    .filter(({ freed, before, after }) => freed.mmapped && consistent(after, before) && dynamic && freed.headerSize <= MMAP_THRESHOLD_MAX &&
      freed.rawSize > BigInt(MMAP_THRESHOLD_MAX) && before.hi !== undefined && freed.headerSize > before.hi)
    .map(({ what, freed }) =>
      `The mmapped ${what} (${freed.headerSize} bytes) did not raise the threshold although its size is not above the ` +
      `${MMAP_THRESHOLD_MAX}-byte ceiling: its size word, flag bits included, is ${freed.rawSize}, which is.`),

  // If no probe grew the break because brk() was refused: the cause.
  ({ blocked }) => blocked === undefined ? undefined
    : `No probe grew the break: ${blocked}. Without that, the threshold's lower side cannot be seen.`,
];

export function describeRows(rows: MmapThresholdRow[], setting: Setting): { findings: string[]; surprises: string[] } {
  const f = facts(rows, setting);
  return { findings: say(FINDINGS, f), surprises: say(SURPRISES, f) };
}
