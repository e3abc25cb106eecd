// What the heap-growth experiment says about its rows: where the break moved
// up and by how much, what it took beyond the need (the top pad), and what
// the frees gave back. Each finding and surprise a rule over the figures
// measured; a run whose break never moved up has rules of its own.
import { blockedBreak } from '../../break-room';
import { bytes, hex, rangeOf, withArticle } from '../../format';
import { MINSIZE, requestToChunkSize } from '../../size-classes';
import { DEFAULT_TOP_PAD, DEFAULT_TRIM_THRESHOLD, mallocPar, mostCommon, topChangeCause, topPadInForce } from '../measure';
import { Rule, say } from '../rules';
import { BreakStep, breakSteps, COUNT, HeapGrowthRow, Measured, SIZE } from './measure';

interface Facts {
  rows: HeapGrowthRow[];
  page: number;
  isolated: boolean;
  /** The chunk each malloc(SIZE) takes. */
  chunk: number;
  mallocRows: HeapGrowthRow[];
  /** Every step that moved the break, and the mallocs among them that moved it up. */
  moves: BreakStep[];
  growth: BreakStep[];
  /** The break before the first malloc and after the last. */
  start: bigint;
  peak: bigint;
}

/** A run whose break never moved up. */
interface Still extends Facts {
  /** Why, when brk() was refused (read after the run); undefined when malloc's own memory held every request. */
  blocked: string | undefined;
}

/** A run whose break moved up. */
interface Growth extends Facts {
  first: BreakStep;
  /** The break at the start and after each growth step, and how many of them are page multiples. */
  breaks: bigint[];
  aligned: number;
  /** The growth steps' sizes, and how many are whole pages. */
  sizes: number[];
  whole: number;
  /** What each growth step took beyond what the top chunk was missing, and the whole pages of pad in that. */
  extras: number[];
  pads: number[];
  /** mp_.top_pad, read after the run, and what the sentences call it. */
  topPad: number;
  padName: string;
  /** Mallocs that moved the break although their chunk fit the top chunk; those where it fit without MINSIZE more. */
  stray: HeapGrowthRow[];
  keep: HeapGrowthRow[];
  freeRows: HeapGrowthRow[];
  /** The last free, and the frees that moved the break down. */
  last: HeapGrowthRow;
  trims: BreakStep[];
}

function facts({ rows, page }: Measured, isolated: boolean): Facts {
  const moves = breakSteps(rows);
  const mallocRows = rows.filter((r) => r.op === 'malloc');
  return {
    rows,
    page,
    isolated,
    chunk: requestToChunkSize(SIZE),
    mallocRows,
    moves,
    growth: moves.filter((s) => s.op === 'malloc' && s.size > 0),
    start: mallocRows[0].breakBefore,
    peak: mallocRows[mallocRows.length - 1].breakAfter,
  };
}

/** Only for a run whose break never moved up: whether brk() was refused, read now (after the run). */
function still(f: Facts): Still {
  return { ...f, blocked: blockedBreak() };
}

/** Only for a run whose break moved up: mp_.top_pad, read now (after the run), to compare with the pad measured. */
function grown(f: Facts): Growth {
  const { page, growth, chunk, mallocRows, rows, start, moves } = f;
  const breaks = [start, ...growth.map((s) => s.to)];
  const sizes = growth.map((s) => s.size);
  const extras = growth.map((s) => s.extra!);
  const topPad = topPadInForce();
  const stray = mallocRows.filter((r) => r.breakAfter > r.breakBefore && chunk <= r.topBefore);
  const freeRows = rows.filter((r) => r.op === 'free');
  return {
    ...f,
    first: growth[0],
    breaks,
    aligned: breaks.filter((b) => b % BigInt(page) === 0n).length,
    sizes,
    whole: sizes.filter((s) => s % page === 0).length,
    extras,
    // extra = pad + MINSIZE + rounding up to a page: less MINSIZE and rounded down to pages, the pad.
    pads: extras.map((e) => Math.floor((e - MINSIZE) / page) * page),
    topPad,
    padName: topPad === DEFAULT_TOP_PAD ? "mp_.top_pad, glibc's default" : 'mp_.top_pad, read from glibc',
    stray,
    keep: stray.filter((r) => r.topBefore < chunk + MINSIZE),
    freeRows,
    last: freeRows[freeRows.length - 1],
    trims: moves.filter((s) => s.op === 'free'),
  };
}

// How many mallocs, where, and how often and how far the break moved up.
const mallocsSentence: Rule<Facts> = ({ chunk, isolated, growth, start, peak }) =>
  `${COUNT} × malloc(${SIZE}) (${chunk}-byte chunks, ${bytes(COUNT * SIZE)} requested, all kept) ${isolated ? 'in a fresh child process' : 'in this process'}: ` +
  `the break moved up ${growth.length} times, ${hex(start)} → ${hex(peak)} (+${bytes(Number(peak - start))}).`;

const STILL_FINDINGS: Rule<Still>[] = [
  mallocsSentence,

  // If brk() was not refused: malloc's own memory held every chunk.
  ({ blocked, mallocRows, chunk }) => blocked !== undefined ? undefined
    : `The break never moved: the top chunk and free chunks (top ${bytes(mallocRows[0].topBefore)} at the start) held all ${bytes(COUNT * chunk)}.`,
];

const STILL_SURPRISES: Rule<Still>[] = [
  // If brk() was refused: why.
  ({ blocked }) => blocked === undefined ? undefined : `The break never moved: ${blocked}.`,
];

const GROWTH_FINDINGS: Rule<Growth>[] = [
  mallocsSentence,

  // How many requests the memory malloc held served before the first break move.
  ({ first, mallocRows }) =>
    `The first ${first.n - 1} requests (${bytes((first.n - 1) * SIZE)}) moved nothing: free chunks and the ` +
    `${mallocRows[0].topBefore}-byte top chunk malloc already held served them. Request ${first.n} moved the break first.`,

  // How many break values were page multiples.
  ({ breaks, aligned, page }) => aligned === breaks.length
    ? `All ${breaks.length} break values (the start and after each step) were multiples of the ${page}-byte page.`
    : `${aligned} of ${breaks.length} break values were multiples of the ${page}-byte page.`,

  // The sizes of the growth steps, and how many were whole pages.
  ({ sizes, whole, page }) =>
    `Growth steps were ${rangeOf(sizes)} bytes (most often ${mostCommon(sizes)}); ` +
    `${whole === sizes.length ? 'every one' : `${whole} of ${sizes.length}`} a whole number of ${page}-byte pages.`,

  // What each step took beyond the need: the top pad measured, against mp_.top_pad.
  ({ extras, pads, chunk, padName, topPad }) =>
    `Each step took ${rangeOf(extras)} bytes beyond what the request was missing from the top chunk (its ${chunk}-byte chunk minus the top before). ` +
    `Less MINSIZE (${MINSIZE}) and rounded down to whole pages that is ${rangeOf(pads)} bytes: the top pad measured ` +
    `(${padName}: ${topPad}); the remaining ${rangeOf(extras.map((e, i) => e - pads[i]))} bytes are MINSIZE and rounding up to a page.`,

  // If no free moved the break down: where it stayed and the top left; else how often, how far, and where it ended.
  ({ trims, last, peak, start, topPad }) => trims.length === 0
    ? `Freeing all ${COUNT} (oldest first) left the break at ${hex(last.breakAfter)}: no trim; ` +
      `the top chunk held ${bytes(last.topAfter)} after the last free.`
    : `Freeing all ${COUNT} (oldest first) moved the break down ${trims.length === 1 ? 'once' : `${trims.length} times`}, first at free ${trims[0].n}: ` +
      `${hex(peak)} → ${hex(last.breakAfter)} (−${bytes(Number(peak - last.breakAfter))}, trim), leaving ${withArticle(bytes(last.topAfter))} top chunk (the top pad in force + ${last.topAfter - topPad} bytes); ` +
      (last.breakAfter === start ? 'the final break is exactly where the run started.'
        : `the final break is ${bytes(Math.abs(Number(last.breakAfter - start)))} ${last.breakAfter > start ? 'above' : 'below'} where the run started.`),
];

const GROWTH_SURPRISES: Rule<Growth>[] = [
  // If a break value or a step was not whole pages.
  ({ breaks, aligned, sizes, whole, page }) => aligned === breaks.length && whole === sizes.length ? undefined
    : `Not every break step was page-aligned: ${breaks.length - aligned} unaligned break values, ${sizes.length - whole} steps not a multiple of ${page}.`,

  // If the pad measured was not the same in every step, or not mp_.top_pad in whole pages.
  ({ pads, topPad, page, padName }) => {
    const measuredPad = Math.min(...pads);
    return measuredPad === topPad - (topPad % page) && Math.max(...pads) === measuredPad ? undefined
      : `The measured top pad was ${rangeOf(pads)} bytes (whole pages), not the ${topPad} bytes of ${padName}.`;
  },

  // If requests whose chunk fit the top chunk moved the break: those that would have left it below MINSIZE.
  ({ keep, growth, chunk }) => keep.length === 0 ? undefined
    : `${keep.length} of ${growth.length} break moves came from requests whose ${chunk}-byte chunk fit the top chunk, which held ` +
      `${rangeOf(keep.map((r) => r.topBefore))} bytes (e.g. request ${keep[0].n}): less than chunk + MINSIZE (${chunk + MINSIZE}), ` +
      'so malloc grew the heap rather than leave the top chunk below MINSIZE.',

  // ...and those that would not have.
  ({ stray, keep, growth, chunk }) => {
    if (!(stray.length > keep.length)) return undefined;
    const r = stray.find((x) => x.topBefore >= chunk + MINSIZE)!;
    return `${stray.length - keep.length} of ${growth.length} break moves came from requests whose top chunk held chunk + MINSIZE or more, e.g. request ${r.n} with ${withArticle(r.topBefore)}-byte top.`;
  },

  // If growth steps did not grow from the top chunk read before them (top after + chunk − step is the one they grew from).
  ({ growth, rows, chunk }) => {
    const detached = growth.filter((s) => rows[s.row].topAfter !== rows[s.row].topBefore + s.size - chunk);
    if (detached.length === 0) return undefined;
    const s = detached[0];
    const r = rows[s.row];
    return `${detached.length} break steps did not grow from the top chunk read before them, e.g. request ${s.n}: top ${r.topBefore} + step ${s.size} − chunk ${chunk} ` +
      `≠ top after ${r.topAfter}, so the top it grew from held ${r.topAfter + chunk - s.size} bytes; ${topChangeCause(r)}. What each took beyond the need is counted from the top it grew from.`;
  },

  // If the top reached the default trim threshold during the frees and the break never came down:
  // why, read now (a refused brk(), or mp_.trim_threshold).
  ({ trims, freeRows, last, isolated }) => {
    const grownTop = Math.max(...freeRows.map((r) => r.topAfter), last.topBefore);
    if (!(trims.length === 0 && grownTop >= DEFAULT_TRIM_THRESHOLD)) return undefined;
    const blocked = blockedBreak();
    const trimThreshold = Number(mallocPar().trimThreshold);
    return `The top chunk reached ${bytes(grownTop)} during the frees, at or above glibc's default 128 KiB trim threshold, but the break never came down: ` +
      (blocked ?? `mp_.trim_threshold, read after the run, is ${bytes(trimThreshold)}` +
        (isolated ? '' : ' (in this process an earlier free of an mmapped chunk may have raised it)')) + '.';
  },
];

export function describeRows(measured: Measured, isolated: boolean): { findings: string[]; surprises: string[] } {
  const f = facts(measured, isolated);
  if (f.growth.length === 0) {
    const s = still(f);
    return { findings: say(STILL_FINDINGS, s), surprises: say(STILL_SURPRISES, s) };
  }
  const g = grown(f);
  return { findings: say(GROWTH_FINDINGS, g), surprises: say(GROWTH_SURPRISES, g) };
}
