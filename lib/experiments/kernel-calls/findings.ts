// What the kernel-calls experiment says about its rows: one sentence per
// step (what it asked of the kernel, if anything), then what the run says
// as a whole. Each finding and surprise a rule over the figures measured.
import { blockedBreak } from '../../break-room';
import { bytes, hex, plural, withArticle } from '../../format';
import { MINSIZE, requestToChunkSize } from '../../size-classes';
import { DEFAULT_MMAP_THRESHOLD, mmapThresholdNow, rangeHolding, topChangeCause, topPadInForce } from '../measure';
import { Rule, say } from '../rules';
import { KernelCallRow, LARGE, Measured } from './measure';

interface Facts extends Measured {
  isolated: boolean;
  /** mp_.top_pad, read after the run. */
  pad: number;
  /** The first heap malloc that moved the break up: what the top chunk was missing, what brk took beyond that, and that less the pad. */
  /**
   * The first heap malloc that moved the break up: what the top chunk it grew from was missing, what brk took beyond that,
   * and that less the pad. The top it grew from is what the figures after the step give (top after + chunk − break move);
   * `changed`, what it was off the top read before the step, when it was.
   */
  grew?: { r: KernelCallRow; missing: number; extra: number; rest: number; changed?: number };
  pastTop: KernelCallRow;
  large: KernelCallRow;
  freed: KernelCallRow;
  /** mp_.mmap_threshold as a sentence, read after the run only when past-top was mmapped or the large request was not. */
  threshold?: string;
  /** Why brk() could not grow the heap (main_arena's NONCONTIGUOUS_BIT, read after the run), when past-top did not move the break. */
  blocked?: string;
}

/**
 * Where past-top's chunk lay among the free chunks the bins listed before
 * the plan, those the fillers took left out, when it came from memory
 * malloc held: what the surprise says instead of a likely cause.
 */
function pastTopSource({ pastTop, rows, listed }: Facts): string {
  const chunk = pastTop.address - 16n;
  const fillers = new Map(rows.filter((r) => r.role === 'filler').map((r) => [r.address - 16n, r.chunkSize]));
  // A filler served by splitting a listed chunk starts where it starts; the rest of that chunk stayed free.
  const holder = listed.chunks.find((c) => c.address <= chunk && chunk < c.address + BigInt(c.size));
  const its = `its ${pastTop.chunkSize}-byte chunk at ${hex(chunk)}`;
  const top = `the top chunk went ${pastTop.topBefore} → ${pastTop.topAfter} B`;
  if (holder !== undefined) {
    const listedChunk = `the ${holder.size}-byte free chunk at ${hex(holder.address)} that the bins listed`;
    const filler = fillers.get(holder.address);
    const past = Number(chunk - holder.address) + pastTop.chunkSize - holder.size;
    if (past <= 0) {
      return `${its} came from ${listedChunk} and ` +
        (filler === undefined ? 'no filler took' : `whose first ${filler} bytes a filler took`) + ` (${top}).`;
    }
    return `${its} begins in ${listedChunk} and runs ${past} bytes past its end (${top}): ` +
      'memory beside it was merged with it after the bins were read.';
  }
  const largest = listed.chunks.filter((c) => !fillers.has(c.address)).reduce((m, c) => Math.max(m, c.size), 0);
  return `${its} lies in none of the ${plural(listed.chunks.length, 'free chunk')} main_arena's bins listed when they were read ` +
    `(the largest the fillers left was ${largest} bytes${listed.whole ? '' : '; a list stopped early, so more may have been free'}), ` +
    `and ${top}: the memory it came from was freed after the bins were read.`;
}

function facts(measured: Measured, isolated: boolean): Facts {
  const { rows } = measured;
  const pad = topPadInForce();
  const r = rows.find((row) => row.breakDelta > 0 && !row.mmapped);
  const pastTop = rows.find((row) => row.role === 'past-top')!;
  const large = rows.find((row) => row.role === 'large')!;
  let grew: Facts['grew'];
  if (r !== undefined) {
    const grownFrom = r.topAfter + r.chunkSize - r.breakDelta;
    const missing = r.chunkSize - grownFrom;
    const extra = r.breakDelta - missing;
    grew = { r, missing, extra, rest: extra - pad, ...(grownFrom === r.topBefore ? {} : { changed: grownFrom - r.topBefore }) };
  }
  return {
    ...measured,
    isolated,
    pad,
    grew,
    pastTop,
    large,
    freed: rows.find((row) => row.role === 'free-large')!,
    threshold: pastTop.mmapped || !large.mmapped ? mmapThresholdNow() : undefined,
    blocked: pastTop.breakDelta > 0 ? undefined : blockedBreak(),
  };
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

/** What one step did, by its verdict. */
function stepSentence(r: KernelCallRow): string {
  const call = r.op === 'malloc' ? `malloc(${r.size})` : `free() of the malloc(${r.size})`;
  const why = r.role === 'filler' ? ' (a filler, to leave no free or top chunk big enough for the next request)' : '';
  const topMove = `the top chunk went ${r.topBefore} → ${r.topAfter} B`;
  switch (r.verdict) {
    // Neither the break nor the map moved for it: from the top chunk, a free chunk, or neither by the top's change.
    case 'served from memory it held': {
      const from = r.topAfter === r.topBefore - r.chunkSize ? 'carved from the top chunk'
        : r.topAfter === r.topBefore ? 'the top chunk untouched, so from a free chunk' : 'from memory malloc held';
      return `${call}${why}, ${withArticle(r.chunkSize)}-byte chunk at ${hex(r.address)}, was served from memory malloc already held ` +
        `(${from}): ${breakNote(r)}, ${mapsNote(r)}, and ${topMove}.`;
    }
    // The break moved: up for a chunk the top could not hold, down for a trim.
    case 'brk':
      return r.breakDelta > 0
        ? `${call}${why} needed ${withArticle(r.chunkSize)}-byte chunk, ` +
          (r.chunkSize > r.topBefore ? `more than the ${r.topBefore}-byte top chunk` : `which with MINSIZE more did not fit the ${r.topBefore}-byte top chunk`) +
          ': the break moved ' +
          `${hex(r.breakBefore)} → ${hex(r.breakAfter)} (+${bytes(r.breakDelta)}): brk; ${heapChange(r)}${topMove}.`
        : `${call} moved the break down ${hex(r.breakBefore)} → ${hex(r.breakAfter)} (${bytes(r.breakDelta)}): ` +
          `the heap was trimmed with brk; ${topMove}.`;
    // A new mapping holds the chunk.
    case 'mmap': {
      const range = rangeHolding(r.mapsChange.mapped, r.address)!;
      return `${call} got ${withArticle(bytes(r.chunkSize))} chunk at ${hex(r.address)} in ${bytes(range.size)} newly mapped at ` +
        `${hex(range.start)}–${hex(range.end)} (${r.region?.kind ?? 'unknown'} ${r.region?.perms ?? ''}): mmap; ${breakNote(r)}.`;
    }
    // The mapping that held the chunk went away.
    case 'munmap': {
      const range = rangeHolding(r.mapsChange.unmapped, r.address)!;
      return `${call} removed ${bytes(range.size)} of mappings at ${hex(range.start)}–${hex(range.end)}: munmap; ${breakNote(r)}.`;
    }
    // A free that moved neither.
    case 'no kernel call seen':
      return `${call} left the break at ${hex(r.breakAfter)} and the mappings around ${hex(r.address)} as they were: ` +
        `no kernel call seen; ${topMove}.`;
  }
}

/**
 * `, raised there by run N of this plan, …` when an earlier run of the plan freed an mmapped chunk of
 * exactly `threshold` bytes (free raises the threshold to the size of such a chunk), else nothing.
 */
function raisedBy(earlier: Facts['earlier'], threshold: number): string {
  let k = earlier.length - 1;
  while (k >= 0 && earlier[k].freedLarge !== threshold) k--;
  if (k < 0) return '';
  return `; run ${k + 1} of this plan raised it there: it read ${earlier[k].thresholdBefore} before its plan, ` +
    `and its free of the large request's ${threshold}-byte mmapped chunk raised the threshold to that chunk's size`;
}

const FINDINGS: Rule<Facts>[] = [
  // Each step: what it asked of the kernel, if anything.
  ({ rows }) => rows.map(stepSentence),

  // If the plan was measured again: why, run by run, and which run is shown.
  ({ runs, again }) => runs > 1
    ? `${again.map((why, i) => `In run ${i + 1} of this plan, ${why}`).join('; ')}; so it was measured again, and run ${runs} is shown.`
    : undefined,

  // How past-top was sized: from mp_.mmap_threshold as read before the plan, and who set it when it is not glibc's first value.
  // (The chunk it asks for: one served from a free chunk can be 16 bytes bigger, a remainder too small to split.)
  ({ pastTop, thresholdBefore: threshold, page }) => {
    const asked = requestToChunkSize(pastTop.size);
    const gap = threshold.bytes - asked;
    const read = `malloc(${pastTop.size}) was sized from mp_.mmap_threshold, read before the plan: ${threshold.bytes} bytes, ` +
      `for ${withArticle(asked)}-byte chunk, ` +
      (gap === 2 * page ? 'two pages below it' : gap > 0 ? `${gap} bytes below it` : `not below it (past-top asks for a page at least, ${page} bytes)`);
    if (threshold.bytes === DEFAULT_MMAP_THRESHOLD) return `${read}.`;
    return `${read}; glibc starts it at ${bytes(DEFAULT_MMAP_THRESHOLD)}, and ` + (threshold.fixed
      ? 'mp_.no_dyn_threshold is 1: a tunable, MALLOC_MMAP_THRESHOLD_ or mallopt set it.'
      : `mp_.no_dyn_threshold is 0, so free() of an mmapped chunk of ${threshold.bytes} bytes raised it to that chunk's size before this plan.`);
  },

  // The [heap] before the plan's first step, if there was one, and the break then.
  ({ first, isolated }) => {
    const heap = first.regions.find((r) => r.kind === 'heap');
    const where = isolated ? 'this fresh child process' : 'this process';
    return heap === undefined
      ? `Before the first malloc of the plan, ${where} had no [heap] region; the break was at ${hex(first.brk)}.`
      : `Before the first malloc of the plan, ${where} already had a [heap] of ${bytes(heap.size)} ` +
        `(${hex(heap.start)}–${hex(heap.end)}, break at ${hex(first.brk)}): ` +
        (isolated ? "Node's start-up and loading heapscope had grown it" : 'it had grown before this experiment ran') +
        ', so its very first growth happened before anything here could watch.';
  },

  // If the break moved up: what the first move took beyond the need, against mp_.top_pad; else the largest top seen.
  ({ grew, rows, pad, page, blocked }) => {
    if (grew === undefined) {
      // Where brk() was refused, the surprise about past-top says why.
      if (blocked !== undefined) return undefined;
      return `The break never moved up in this run: every heap request fit in memory malloc held (largest top chunk seen ${bytes(Math.max(...rows.map((r) => r.topBefore)))}).`;
    }
    const { r, missing, extra, rest } = grew;
    return `The first break move seen in this run was +${bytes(r.breakDelta)} for malloc(${r.size}): its ${r.chunkSize}-byte chunk ` +
      `was ${missing} bytes more than the ${r.topBefore}-byte top chunk, so brk took ${extra} bytes beyond what was missing, ` +
      `${bytes(pad)} (mp_.top_pad, read from glibc) plus ${rest} bytes` +
      (rest >= MINSIZE && rest < MINSIZE + page ? ` (MINSIZE ${MINSIZE} and rounding up to ${withArticle(page)}-byte page).` : '.');
  },
];

const SURPRISES: Rule<Facts>[] = [
  // If the first growth took more or less than the pad, MINSIZE and rounding up to a page allow.
  ({ grew, pad, page, disturbed }) => grew === undefined || (grew.rest >= MINSIZE && grew.rest < MINSIZE + page) ? undefined
    : `The first heap growth took ${grew.extra} bytes beyond what the request was missing; glibc's rule (top pad ${pad} + MINSIZE ${MINSIZE}, ` +
      `rounded up to ${withArticle(page)}-byte page) allows ${pad + MINSIZE}–${pad + MINSIZE + page - 1}` +
      (disturbed === undefined ? '.' : `; in this run, ${disturbed}.`),

  // If the top chunk the heap grew from was not the one read before the step: by how much, and what was measured of why.
  ({ grew }) => {
    if (grew?.changed === undefined) return undefined;
    const { r, changed } = grew;
    return `The top chunk the ${r.role} malloc grew the heap from held ${r.topBefore + changed} bytes (its ${r.topAfter} after, ` +
      `less the break's ${r.breakDelta}, plus the ${r.chunkSize}-byte chunk), ${Math.abs(changed)} ${changed > 0 ? 'more' : 'less'} than the ${r.topBefore} read before the step: ` +
      `${topChangeCause(r)}.`;
  },

  // Another thread's malloc or free in the run shown, after every run met one.
  ({ disturbed, runs }) => disturbed === undefined ? undefined
    : `In run ${runs}, the one shown, ${disturbed}: the top chunk and break figures around that step are not the step's alone.`,

  // Each heap malloc that moved the break although its chunk fit the top chunk: short of MINSIZE to spare, or not.
  // (Splitting the top chunk must leave at least MINSIZE in it, so a chunk needs chunk + MINSIZE of top.)
  ({ rows }) => rows.filter((row) => row.op === 'malloc' && !row.mmapped && row.breakDelta > 0).flatMap((r) => {
    if (r.chunkSize + MINSIZE <= r.topBefore) {
      return [`malloc(${r.size}) moved the break by ${r.breakDelta} bytes although the ${r.topBefore}-byte top chunk held its ${r.chunkSize}-byte chunk and MINSIZE more.`];
    }
    return r.chunkSize <= r.topBefore
      ? [`malloc(${r.size}) moved the break although its ${r.chunkSize}-byte chunk fit the ${r.topBefore}-byte top chunk: ` +
        `the top chunk would have kept ${r.topBefore - r.chunkSize} bytes, less than MINSIZE (${MINSIZE}).`]
      : [];
  }),

  // If past-top did not move the break: brk() was refused (measured: main_arena non-contiguous), the top had grown,
  // or where its chunk lay among the free chunks listed.
  (f) => (f.pastTop.mmapped && f.blocked === undefined) || f.pastTop.breakDelta > 0 ? undefined
    : `malloc(${f.pastTop.size}) was chosen to overflow the top chunk and every free chunk in main_arena's bins, yet the break did not move: ` +
      (f.blocked !== undefined ? `${f.blocked}.` : f.pastTop.chunkSize + MINSIZE <= f.pastTop.topBefore
        ? `the top chunk had grown to ${f.pastTop.topBefore} bytes by then.`
        : pastTopSource(f)),

  // If past-top, below the default mmap threshold, was mmapped: mp_'s threshold now.
  ({ pastTop, threshold, blocked }) => pastTop.mmapped && blocked === undefined
    ? `malloc(${pastTop.size}), below glibc's default ${bytes(DEFAULT_MMAP_THRESHOLD)} mmap threshold, was mmapped: ${threshold}.`
    : undefined,

  // If the threshold was past 1 MiB before the run (a freed mmapped chunk raises it; so do a tunable and mallopt): the large request was the threshold itself.
  ({ large, earlier }) => large.size > LARGE
    ? `The large request was ${large.size} bytes, not ${bytes(LARGE)}: mp_.mmap_threshold was already ${large.size} bytes when the run read it, ` +
      'and glibc maps only a chunk at or above it' + raisedBy(earlier, large.size) + '.'
    : undefined,

  // If the large request, above the default mmap threshold, came from the heap: mp_'s threshold now.
  ({ large, threshold }) => large.mmapped ? undefined
    : `malloc(${bytes(large.size)}), above glibc's default ${bytes(DEFAULT_MMAP_THRESHOLD)} mmap threshold, came from the heap (${large.verdict}), ` +
      `its ${large.chunkSize}-byte chunk below the threshold: ${threshold}.`,

  // If freeing the mmapped large chunk did not unmap it.
  ({ large, freed }) => large.mmapped && freed.verdict !== 'munmap'
    ? `free() of the mmapped ${large.chunkSize}-byte chunk did not remove its mapping (${freed.verdict}).`
    : undefined,
];

export function describeRows(measured: Measured, isolated: boolean): { findings: string[]; surprises: string[] } {
  const f = facts(measured, isolated);
  return { findings: say(FINDINGS, f), surprises: say(SURPRISES, f) };
}
