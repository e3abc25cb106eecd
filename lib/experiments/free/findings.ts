// What the free experiment says about its rows: the steps of each case
// picked out once, then each finding and surprise a rule over them, case by
// case in the order they ran.
import { CHUNK_HEADER_SIZE } from '../../chunk';
import { hex, shortBytes, withArticle } from '../../format';
import { trimSummary, TrimSummary } from '../measure';
import { Rule, say } from '../rules';
import {
  BIG_PAD, DRAIN, FreeRun, FreeRunStepRow, FreeStepRow, GUARD, Measured, MMAPPED, RUN_BLOCK, RUN_COUNT, SCATTERED,
  SCATTERED_COUNT, SMALL, SmallMiss, Unmapping,
} from './measure';

/** sizeof(struct malloc_chunk) on 64-bit: malloc_trim spares the header and list pointers of a free chunk. */
const FREE_CHUNK_HEADER = 48;

/** (a) The small case: the probe's malloc, and the steps around its free. */
interface Small {
  rows: FreeStepRow[];
  /** Earlier runs whose malloc again returned another chunk. */
  missed: SmallMiss[];
  first: FreeStepRow;
  before: FreeStepRow;
  freed: FreeStepRow;
  again: FreeStepRow;
}

/** (c) The free run: its rows, what else it measured, where its frees moved the break. */
interface Run extends FreeRun {
  rows: FreeRunStepRow[];
  t: TrimSummary;
  end: FreeRunStepRow;
  beside: number;
}

/** (d) The scattered blocks: the steps the sentences compare. */
interface Trim {
  start: FreeStepRow;
  allocated: FreeStepRow;
  freed: FreeStepRow;
  padded: FreeStepRow;
  zero: FreeStepRow;
  blockRows: FreeStepRow[];
  /** Whole pages inside the freed blocks that malloc_trim could hand back. */
  pages: number;
  lastGuard: FreeStepRow;
  /** RSS pages malloc_trim(BIG_PAD) took back, and how the break moved meanwhile. */
  drop: number;
  breakText: string;
}

/** (b) The mmapped chunk: before, after the malloc, after the free. */
interface Mapped extends Unmapping {
  start: FreeStepRow;
  allocated: FreeStepRow;
  freed: FreeStepRow;
}

interface Facts {
  small: Small;
  /** The release, where it has no fastbins (Measured.noFastbins). */
  noFastbins?: string;
  run: Run;
  trim: Trim;
  mmapped: Mapped;
  page: number;
}

/** Whole pages malloc_trim can hand back inside a free chunk: past its header and list pointers, up to its end. */
function wholePages(chunk: bigint, size: number, page: number): number {
  const p = BigInt(page);
  const first = ((chunk + BigInt(FREE_CHUNK_HEADER) + p - 1n) / p) * p;
  const end = chunk + BigInt(size);
  return end > first ? Number((end - first) / p) : 0;
}

function facts({ rows, smallMissed, run, unmapping, page, noFastbins }: Measured): Facts {
  const steps = (phase: FreeStepRow['phase']) => rows.filter((r): r is FreeStepRow => r.kind === 'step' && r.phase === phase);
  const small = steps('small');
  const [before, freed, again] = small.slice(-3);
  const runRows = rows.filter((r): r is FreeRunStepRow => r.kind === 'free-run');
  const trim = steps('malloc-trim');
  const [padded, zero] = trim.slice(-2);
  const trimFreed = trim[trim.length - 3];
  const blockRows = trim.filter((r) => r.op === 'malloc' && r.role === 'block');
  const [start, allocated, mapped] = steps('mmapped');
  return {
    small: { rows: small, missed: smallMissed, first: small.find((r) => r.role === 'probe')!, before, freed, again },
    run: { ...run, rows: runRows, t: trimSummary(runRows), end: runRows[runRows.length - 1], beside: runRows.filter((r) => r.besideTop).length },
    trim: {
      start: trim[0],
      allocated: trim[trim.length - 2 - SCATTERED_COUNT - 1],
      freed: trimFreed,
      padded,
      zero,
      blockRows,
      pages: blockRows.reduce((sum, r) => sum + wholePages(r.address! - CHUNK_HEADER_SIZE, r.chunkSize!, page), 0),
      lastGuard: trim.filter((r) => r.role === 'guard').pop()!,
      drop: trimFreed.rssPages! - padded.rssPages!,
      breakText: padded.programBreak === trimFreed.programBreak
        ? `while the break stayed at ${hex(padded.programBreak)}`
        : `and the break moved ${hex(trimFreed.programBreak)} → ${hex(padded.programBreak)}`,
    },
    mmapped: { ...unmapping, start, allocated, freed: mapped },
    page,
    ...(noFastbins === undefined ? {} : { noFastbins }),
  };
}

/** At the small free: mallinfo's fastbin bytes before and after. */
function fastbinsAtFree(rows: FreeStepRow[]): { before: number; after: number } {
  const at = rows.findIndex((r) => r.op === 'free');
  return { before: rows[at - 1].fastbinBytes, after: rows[at].fastbinBytes };
}

const FINDINGS: Rule<Facts>[] = [
  // (a) If the next malloc of the size returned the freed chunk: malloc kept it (a surprise when not).
  ({ small: { first, again } }) => again.address === first.address
    ? `free() of ${withArticle(first.chunkSize!)}-byte chunk (malloc(${SMALL}) at ${hex(first.address!)}, after ${DRAIN} mallocs of the same size) kept it in malloc: ` +
      `the next malloc(${SMALL}) returned the same address.`
    : undefined,

  // (a) If it was measured again: what the earlier runs' malloc returned instead.
  ({ small: { missed } }) => missed.length === 0 ? undefined
    : `In run${missed.length > 1 ? 's' : ''} 1${missed.length > 1 ? `–${missed.length}` : ''} of (a) the malloc after the free returned another chunk ` +
      `(${missed.map((m) => `${hex(m.again)} instead of ${hex(m.probe)}`).join('; ')}): one of that size had reached its bin after the probe, ` +
      `so (a) was measured again; run ${missed.length + 1} is shown.`,

  // Whether the break moved during the small malloc, free and malloc again.
  ({ small: { before, freed, again } }) => {
    const breaks = new Set([before.programBreak, freed.programBreak, again.programBreak]);
    return breaks.size === 1
      ? `The break stayed at ${hex(freed.programBreak)} through the malloc, the free and the malloc again.`
      : `The break moved during the small malloc/free/malloc: ${[...breaks].map(hex).join(' → ')}.`;
  },

  // If the free moved neither fastbin nor in-use bytes, the chunk went to tcache; else how they moved (a glibc without fastbins: in-use bytes only).
  ({ small: { before, freed, first }, noFastbins }) => {
    const fast = freed.fastbinBytes - before.fastbinBytes;
    const used = freed.inUse - before.inUse;
    const fastText = noFastbins === undefined ? `mallinfo's fastbin bytes stayed at ${freed.fastbinBytes} and its ` : 'mallinfo\'s ';
    return fast === 0 && used === 0
      ? `At that free, ${fastText}in-use bytes did not drop (${before.inUse} → ${freed.inUse}): ` +
        `the chunk went to no bin${noFastbins === undefined ? '' : ` (glibc ${noFastbins} has no fastbins)`} but was held as if in use, in the thread's tcache.`
      : noFastbins === undefined
        ? `At that free, mallinfo's fastbin bytes went ${before.fastbinBytes} → ${freed.fastbinBytes} and its in-use bytes ${before.inUse} → ${freed.inUse}` +
          (fast >= first.chunkSize! ? ': the chunk went to a fastbin.' : '.')
        : `At that free, mallinfo's in-use bytes went ${before.inUse} → ${freed.inUse} (glibc ${noFastbins} has no fastbins).`;
  },

  // (c) If runs were measured again: how few blocks the earlier ones merged into the top.
  ({ run: { missed, attempts } }) => missed.length > 0
    ? `Run${missed.length > 1 ? 's' : ''} 1${missed.length > 1 ? `–${missed.length}` : ''} of ${RUN_COUNT} blocks merged only ` +
      `${missed.join(', ')} of them into the top chunk (the rest had come from a free chunk below it), so the run was measured again; run ${attempts} is shown.`
    : undefined,

  // What allocating the run did to the break, and how many of its frees merged into the top.
  ({ run: { rows, breakAtStart, breakAllocated, beside } }) =>
    `Allocating ${RUN_COUNT} blocks of ${shortBytes(RUN_BLOCK)} (${rows[0].chunkSize}-byte chunks) moved the break from ${hex(breakAtStart)} to ` +
    `${hex(breakAllocated)} (+${Number(breakAllocated - breakAtStart)} bytes); freeing them newest first, ` +
    `${beside} of them merged into the top chunk.`,

  // If the break never moved down: the top it reached, and why (a refused brk(), or mp_.trim_threshold as read then).
  ({ run: { rows, t, end, blocked, trimThreshold } }) => t.firstTrim === undefined
    ? `The break never moved down while they were freed: not observed. The top reached ${Math.max(...rows.map((r) => r.topAfter))} bytes ` +
      `and the break ended at ${hex(end.breakAfter)}` +
      (blocked !== undefined ? `: ${blocked}.` : `; mp_.trim_threshold, read after the run, is ${trimThreshold} bytes.`)
    : undefined,

  // If it did: the free that first moved it, and the tops that had stayed.
  ({ run: { t } }) => {
    const f = t.firstTrim;
    return f === undefined ? undefined
      : `The break first moved down at the free of block ${f.block}, when merging it made the top ${f.mergedTop} bytes ` +
        `(it had been ${f.topBefore}): from ${hex(f.breakBefore)} to ${hex(f.breakAfter)}, ${f.returned} bytes returned, leaving ${withArticle(f.topAfter)}-byte top. ` +
        (t.keptTop === undefined
          ? 'It was the first free to merge a block into the top: no top had stayed before it.'
          : `Tops of up to ${t.keptTop} bytes had stayed.`);
  },

  // ...and over the whole run: how often, by how much, and where the break ended.
  ({ run: { t, end, breakAtStart, breakAllocated } }) => t.firstTrim === undefined ? undefined
    : `Over the whole run the break moved down ${t.trims} times by ${t.returned} bytes in all, from ${hex(breakAllocated)} to ${hex(end.breakAfter)}` +
      ` (${Number(end.breakAfter - breakAtStart)} bytes from where it started), with ${withArticle(end.topAfter)}-byte top left.`,

  // (d) What allocating the scattered blocks did to RSS and the break.
  ({ trim: { start, allocated } }) =>
    `After a first malloc_trim(${BIG_PAD}), ${SCATTERED_COUNT} blocks of ${shortBytes(SCATTERED)}, each written through and followed by a live ${GUARD}-byte guard: ` +
    `RSS went ${start.rssPages} → ${allocated.rssPages} pages and the break ${hex(start.programBreak)} → ${hex(allocated.programBreak)}.`,

  // What freeing them did, and whether the top then began right above the last guard.
  ({ trim: { allocated, freed, lastGuard } }) => {
    const guardEnd = lastGuard.address! - CHUNK_HEADER_SIZE + BigInt(lastGuard.chunkSize!);
    return `Freeing the ${SCATTERED_COUNT} blocks changed RSS ${allocated.rssPages} → ${freed.rssPages} pages and left the break at ${hex(freed.programBreak)} ` +
      `(top ${freed.top} bytes${guardEnd === freed.programBreak - BigInt(freed.top) ? ', right above the last live guard' : ''}).`;
  },

  // If malloc_trim with a big pad lowered RSS: by how much, against the pages the blocks held (a surprise when not).
  ({ trim: { freed, padded, drop, breakText, pages, blockRows }, page }) => drop > 0
    ? `malloc_trim(${BIG_PAD}) (a pad above the ${freed.top}-byte top, so the top stays) returned ${padded.released ? 1 : 0}: RSS fell by ${drop} pages ` +
      `(${shortBytes(drop * page)}) ${breakText}. The freed blocks held ${pages} whole pages past their headers; ` +
      `mallinfo counted ${freed.freeBytes - freed.top} free bytes in all arenas outside main_arena's top, ${blockRows.reduce((sum, r) => sum + r.chunkSize!, 0)} of them in the blocks.`
    : undefined,

  // What malloc_trim(0) then did to the break, the top and RSS.
  ({ trim: { padded, zero } }) =>
    `malloc_trim(0) then ${zero.programBreak < padded.programBreak ? `moved the break down by ${Number(padded.programBreak - zero.programBreak)} bytes` : 'left the break where it was'} ` +
    `(top ${padded.top} → ${zero.top} bytes; RSS ${padded.rssPages} → ${zero.rssPages} pages).`,

  // (b) What malloc(64 MiB) returned, and the mapping that appeared with it.
  ({ mmapped: { start, allocated, grew } }) =>
    `malloc(${shortBytes(MMAPPED)}) returned ${hex(allocated.address!)}, ${withArticle(allocated.chunkSize!)}-byte chunk with the M bit ${allocated.mmapped ? 'set' : 'clear'}; ` +
    (grew !== undefined ? `${grew.size} bytes at ${hex(grew.start)}–${hex(grew.end)} appeared in /proc/self/maps with it` : 'no new mapping appeared around it') +
    ` (mmapped bytes ${start.mmappedBytes} → ${allocated.mmappedBytes}).`,

  // What its free unmapped, and what mallinfo and the break said then.
  ({ mmapped: { allocated, freed, gone } }) =>
    `free() ${gone !== undefined ? `unmapped ${gone.size} bytes at ${hex(gone.start)}–${hex(gone.end)} at once` : 'unmapped nothing around the chunk'}: ` +
    `${freed.chunkMapped ? 'a mapping still held the chunk' : 'no mapping held the chunk any more'}, mmapped bytes went ${allocated.mmappedBytes} → ${freed.mmappedBytes}, ` +
    `and the break ${freed.programBreak === allocated.programBreak ? `stayed at ${hex(freed.programBreak)}` : `moved to ${hex(freed.programBreak)}`}.`,
];

const SURPRISES: Rule<Facts>[] = [
  // (a) If the next malloc of the size returned another chunk than the one freed.
  ({ small: { rows, first, again, before, freed }, noFastbins }) => {
    if (again.address === first.address) return undefined;
    const fast = fastbinsAtFree(rows);
    return `After free() of malloc(${SMALL}) at ${hex(first.address!)} (after ${DRAIN} mallocs of the same size), the next malloc(${SMALL}) ` +
      `returned ${hex(again.address!)}, another chunk; at the free, ` +
      (noFastbins === undefined ? `mallinfo's fastbin bytes went ${fast.before} → ${fast.after}.` : `mallinfo's in-use bytes went ${before.inUse} → ${freed.inUse} (glibc ${noFastbins} has no fastbins).`);
  },

  // (d) If malloc_trim with a big pad did not lower RSS.
  ({ trim: { freed, padded, breakText, pages, drop } }) => drop > 0 ? undefined
    : `malloc_trim(${BIG_PAD}) returned ${padded.released ? 1 : 0} but RSS did not fall (${freed.rssPages} → ${padded.rssPages} pages) ${breakText}, ` +
      `although the freed chunks held ${pages} whole pages past their headers.`,

  // (b) If malloc(64 MiB) came from the heap.
  ({ mmapped: { start, allocated } }) => allocated.mmapped ? undefined
    : `malloc(${shortBytes(MMAPPED)}) was not mmapped: it came from the heap (break ${hex(start.programBreak)} → ${hex(allocated.programBreak)}).`,
];

export function describeRows(measured: Measured): { findings: string[]; surprises: string[] } {
  const f = facts(measured);
  return { findings: say(FINDINGS, f), surprises: say(SURPRISES, f) };
}
