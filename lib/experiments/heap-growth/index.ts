// How does the heap grow?
import { blockedBreak } from '../../break-room';
import { bytes, hex, rangeOf, withArticle } from '../../format';
import { PlanStep, runPlan } from '../../plan';
import { MINSIZE, requestToChunkSize } from '../../size-classes';
import { pageSize } from '../../stats';
import { DEFAULT_TOP_PAD, DEFAULT_TRIM_THRESHOLD, mallocPar, mostCommon, topPadInForce } from '../measure';
import { tunable } from '../tunables';
import { Experiment, ExperimentContext } from '../types';

/** One malloc, or one of the frees at the end, with the break and top chunk around it. */
export interface HeapGrowthRow {
  op: 'malloc' | 'free';
  /** The nth malloc or the nth free, from 1. */
  n: number;
  size: number;
  /** Bytes requested by the allocations still live after this step: the x axis of a break chart. */
  requested: number;
  address: bigint;
  breakBefore: bigint;
  breakAfter: bigint;
  /** main_arena's top chunk (mallinfo keepcost) just before and just after the step. */
  topBefore: number;
  topAfter: number;
}

/** A step where the break moved: growth (`size` > 0) or a trim (`size` < 0). */
export interface BreakStep {
  /** Index of the row that moved it. */
  row: number;
  op: 'malloc' | 'free';
  n: number;
  requested: number;
  from: bigint;
  to: bigint;
  size: number;
  /** Growth only: the chunk size minus the top chunk before: what the top chunk was missing. */
  missing?: number;
  /** Growth only: `size − missing`, what brk took beyond the need. */
  extra?: number;
}

export const COUNT = 4000;
export const SIZE = 1000;

export function breakSteps(rows: readonly HeapGrowthRow[]): BreakStep[] {
  const out: BreakStep[] = [];
  rows.forEach((r, row) => {
    const size = Number(r.breakAfter - r.breakBefore);
    if (size === 0) return;
    const step: BreakStep = { row, op: r.op, n: r.n, requested: r.requested, from: r.breakBefore, to: r.breakAfter, size };
    if (r.op === 'malloc' && size > 0) {
      step.missing = requestToChunkSize(r.size) - r.topBefore;
      step.extra = size - step.missing;
    }
    out.push(step);
  });
  return out;
}

/**
 * COUNT mallocs, each followed by the break and mallinfo, all kept; then
 * every one freed oldest first, each free followed by the same readings.
 */
function measure(): HeapGrowthRow[] {
  const steps: PlanStep[] = [{ op: 'mallinfo' }, { op: 'break' }];
  const mallocs: number[] = [];
  for (let i = 0; i < COUNT; i++) {
    mallocs.push(steps.length);
    steps.push({ op: 'malloc', size: SIZE }, { op: 'break' }, { op: 'mallinfo' });
  }
  for (const m of mallocs) steps.push({ op: 'free', step: m }, { op: 'break' }, { op: 'mallinfo' });
  const { steps: results } = runPlan(steps);

  const rows: HeapGrowthRow[] = [];
  let brk = results[1].programBreak!;
  let top = results[0].mallinfo!.keepcost;
  let requested = 0;
  for (let at = 2; at < results.length; at += 3) {
    const isMalloc = steps[at].op === 'malloc';
    const k = rows.length;
    requested += isMalloc ? SIZE : -SIZE;
    const row: HeapGrowthRow = {
      op: isMalloc ? 'malloc' : 'free',
      n: isMalloc ? k + 1 : k - COUNT + 1,
      size: SIZE,
      requested,
      address: results[isMalloc ? at : mallocs[k - COUNT]].address!,
      breakBefore: brk,
      breakAfter: results[at + 1].programBreak!,
      topBefore: top,
      topAfter: results[at + 2].mallinfo!.keepcost,
    };
    rows.push(row);
    brk = row.breakAfter;
    top = row.topAfter;
  }
  return rows;
}

export const heapGrowth: Experiment<HeapGrowthRow, 'heap-growth'> = {
  name: 'heap-growth',
  question: 'How does the heap grow?',
  // Wants a heap nobody else has grown, trimmed or fragmented, and a trim threshold no earlier free has raised.
  isolatedByDefault: true,
  run(context: ExperimentContext) {
    const page = pageSize();
    const rows = measure();
    const findings: string[] = [];
    const surprises: string[] = [];
    const chunk = requestToChunkSize(SIZE);
    const moves = breakSteps(rows);
    const growth = moves.filter((s) => s.op === 'malloc' && s.size > 0);
    const mallocRows = rows.filter((r) => r.op === 'malloc');
    const start = mallocRows[0].breakBefore;
    const peak = mallocRows[mallocRows.length - 1].breakAfter;
    const where = context.isolated ? 'in a fresh child process' : 'in this process';

    findings.push(
      `${COUNT} × malloc(${SIZE}) (${chunk}-byte chunks, ${bytes(COUNT * SIZE)} requested, all kept) ${where}: ` +
        `the break moved up ${growth.length} times, ${hex(start)} → ${hex(peak)} (+${bytes(Number(peak - start))}).`,
    );
    if (growth.length === 0) {
      const blocked = blockedBreak();
      if (blocked !== undefined) surprises.push(`The break never moved: ${blocked}.`);
      else findings.push(`The break never moved: the top chunk and free chunks (top ${bytes(mallocRows[0].topBefore)} at the start) held all ${bytes(COUNT * chunk)}.`);
      return { rows, findings, surprises };
    }
    const first = growth[0];
    findings.push(
      `The first ${first.n - 1} requests (${bytes((first.n - 1) * SIZE)}) moved nothing: free chunks and the ` +
        `${mallocRows[0].topBefore}-byte top chunk malloc already held served them. Request ${first.n} moved the break first.`,
    );

    const breaks = [start, ...growth.map((s) => s.to)];
    const aligned = breaks.filter((b) => b % BigInt(page) === 0n).length;
    findings.push(aligned === breaks.length
      ? `All ${breaks.length} break values (the start and after each step) were multiples of the ${page}-byte page.`
      : `${aligned} of ${breaks.length} break values were multiples of the ${page}-byte page.`);
    const sizes = growth.map((s) => s.size);
    const whole = sizes.filter((s) => s % page === 0).length;
    findings.push(
      `Growth steps were ${rangeOf(sizes)} bytes (most often ${mostCommon(sizes)}); ` +
        `${whole === sizes.length ? 'every one' : `${whole} of ${sizes.length}`} a whole number of ${page}-byte pages.`,
    );
    if (aligned !== breaks.length || whole !== sizes.length) {
      surprises.push(`Not every break step was page-aligned: ${breaks.length - aligned} unaligned break values, ${sizes.length - whole} steps not a multiple of ${page}.`);
    }

    const extras = growth.map((s) => s.extra!);
    // extra = pad + MINSIZE + rounding up to a page: less MINSIZE and rounded down to pages, the pad.
    const pads = extras.map((e) => Math.floor((e - MINSIZE) / page) * page);
    const measuredPad = Math.min(...pads);
    const expected = topPadInForce();
    const padName = expected === DEFAULT_TOP_PAD ? "mp_.top_pad, glibc's default" : 'mp_.top_pad, read from glibc';
    findings.push(
      `Each step took ${rangeOf(extras)} bytes beyond what the request was missing from the top chunk (its ${chunk}-byte chunk minus the top before). ` +
        `Less MINSIZE (${MINSIZE}) and rounded down to whole pages that is ${rangeOf(pads)} bytes: the top pad measured ` +
        `(${padName}: ${expected}); the remaining ${rangeOf(extras.map((e, i) => e - pads[i]))} bytes are MINSIZE and rounding up to a page.`,
    );
    if (measuredPad !== expected - (expected % page) || Math.max(...pads) !== measuredPad) {
      surprises.push(`The measured top pad was ${rangeOf(pads)} bytes (whole pages), not the ${expected} bytes of ${padName}.`);
    }
    const stray = mallocRows.filter((r) => r.breakAfter > r.breakBefore && chunk <= r.topBefore);
    const keep = stray.filter((r) => r.topBefore < chunk + MINSIZE);
    if (keep.length > 0) {
      surprises.push(
        `${keep.length} of ${growth.length} break moves came from requests whose ${chunk}-byte chunk fit the top chunk, which held ` +
          `${rangeOf(keep.map((r) => r.topBefore))} bytes (e.g. request ${keep[0].n}): less than chunk + MINSIZE (${chunk + MINSIZE}), ` +
          'so malloc grew the heap rather than leave the top chunk below MINSIZE.',
      );
    }
    if (stray.length > keep.length) {
      const r = stray.find((x) => x.topBefore >= chunk + MINSIZE)!;
      surprises.push(`${stray.length - keep.length} of ${growth.length} break moves came from requests whose top chunk held chunk + MINSIZE or more, e.g. request ${r.n} with ${withArticle(r.topBefore)}-byte top.`);
    }
    const detached = growth.filter((s) => rows[s.row].topAfter !== rows[s.row].topBefore + s.size - chunk);
    if (detached.length > 0) {
      const s = detached[0];
      surprises.push(
        `${detached.length} break steps did not simply extend the top chunk, e.g. request ${s.n}: top ${rows[s.row].topBefore} + step ${s.size} − chunk ${chunk} ` +
          `≠ top after ${rows[s.row].topAfter} (the new memory did not continue the old top: non-contiguous or realigned).`,
      );
    }

    const freeRows = rows.filter((r) => r.op === 'free');
    const last = freeRows[freeRows.length - 1];
    const trims = moves.filter((s) => s.op === 'free');
    const shrink = Number(peak - last.breakAfter);
    if (trims.length === 0) {
      findings.push(
        `Freeing all ${COUNT} (oldest first) left the break at ${hex(last.breakAfter)}: no trim; ` +
          `the top chunk held ${bytes(last.topAfter)} after the last free.`,
      );
    } else {
      findings.push(
        `Freeing all ${COUNT} (oldest first) moved the break down ${trims.length === 1 ? 'once' : `${trims.length} times`}, first at free ${trims[0].n}: ` +
          `${hex(peak)} → ${hex(last.breakAfter)} (−${bytes(shrink)}, trim), leaving ${withArticle(bytes(last.topAfter))} top chunk (the top pad in force + ${last.topAfter - expected} bytes); ` +
          (last.breakAfter === start ? 'the final break is exactly where the run started.'
            : `the final break is ${bytes(Math.abs(Number(last.breakAfter - start)))} ${last.breakAfter > start ? 'above' : 'below'} where the run started.`),
      );
    }
    const grownTop = Math.max(...freeRows.map((r) => r.topAfter), last.topBefore);
    if (trims.length === 0 && grownTop >= DEFAULT_TRIM_THRESHOLD) {
      const blocked = blockedBreak();
      const trimThreshold = Number(mallocPar().trimThreshold);
      surprises.push(
        `The top chunk reached ${bytes(grownTop)} during the frees, at or above glibc's default 128 KiB trim threshold, but the break never came down: ` +
          (blocked ?? `mp_.trim_threshold, read after the run, is ${bytes(trimThreshold)}` +
            (context.isolated ? '' : ' (in this process an earlier free of an mmapped chunk may have raised it)')) + '.',
      );
    }
    return { rows, findings, surprises };
  },
};
