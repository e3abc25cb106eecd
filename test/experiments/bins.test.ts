// Isolated runs spawn dist/experiments/child.js: run `npx tsc -p .` first.
// Each stage is checked against the copy decoded after it and against
// glibc's rules, computed here from the parameters the run read.
import { beforeAll, describe, expect, it } from 'vitest';
import { mallocParams } from '../../lib/allocator-state';
import { BinsRow, FrameParams } from '../../lib/experiments/bins';
import { predictedFree } from '../../lib/experiments/bins/findings';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { hex } from '../../lib/format';
import { binIndex, requestToChunkSize } from '../../lib/size-classes';
import { HERE } from '../helpers/glibc-here';

type Result = ExperimentResult<BinsRow>;

const names = (prefix: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

/** The bin listing `name` in a row. */
const listed = (row: BinsRow, name: string) => row.bins.find((b) => b.ours.includes(name));

/** csize2tidx, and whether a free of that size may go to tcache under `p`. */
const tidx = (size: number) => Math.floor((size - 17) / 16);
const cacheable = (size: number, p: FrameParams) => p.tcacheCount > 0 && tidx(size) < p.tcacheBins;

function checkStages(result: Result): void {
  const rows = result.rows;
  const p = rows[0].params!;
  const C = p.tcacheCount;
  // global_max_fast: none from 2.43, which has no fastbins.
  const F = p.globalMaxFast;
  const step = (action: string) => rows.find((r) => r.action === action)!;
  const size = (name: string) => rows[0].carved!.find((c) => c.name === name)!.size;
  expect(rows.every((r) => r.consistent), rows.find((r) => !r.consistent)?.reason).toBe(true);
  // Every test chunk between the neighbours planned, at request2size.
  for (const c of rows[0].carved!) {
    expect(c.size, c.name).toBe(requestToChunkSize(c.request));
    expect(c.after && c.before, c.name).toBe(true);
  }

  for (const [prefix, fast] of [['s', false], ['f', true]] as const) {
    const chunk = size(`${prefix}1`);
    expect(F === undefined ? !HERE.fastbins : chunk <= F === fast).toBe(true);
    expect(cacheable(chunk, p)).toBe(C > 0);
    if (C > 0) {
      // The first C frees fill the tcache bin, last freed first.
      // One chunk is named alone ("free s1"); a string replace would turn "s1–s16" into "s16".
      const fill = step(C === 1 ? `free ${prefix}1` : `free ${prefix}1–${prefix}${C}`);
      const bin = fill.bins.find((b) => b.kind === 'tcache' && b.index === tidx(chunk))!;
      expect(bin.ours).toEqual(names(prefix, 1, C).reverse());
      expect(fill.places.every((c) => c.place === 'tcache' && c.bin === tidx(chunk))).toBe(true);
    }
    // The next goes to a fastbin when its size is at most global_max_fast, else to the unsorted bin (from 2.41, a small chunk to its small bin).
    const next = step(`free ${prefix}${C + 1}`);
    const toFastbin = fast && HERE.fastbins;
    expect(next.places[0].place).toBe(toFastbin ? 'fastbin' : HERE.freedSmall === 'smallbin' ? 'smallbin' : 'unsorted');
    if (toFastbin) expect(next.places[0].bin).toBe(chunk / 16 - 2);
    const sentence = C > 0 ? `because tcache bin ${tidx(chunk)} held ${C} (mp_.tcache_count = ${C})` : '';
    expect(result.findings.some((f) => f.startsWith(`The ${C + 1}`) && f.includes(`(${prefix}${C + 1})`) && f.includes(sentence))).toBe(true);
  }

  // A chunk past the tcache's sizes goes to the unsorted bin at once.
  expect(cacheable(size('L'), p)).toBe(false);
  expect(step('free L').places[0].place).toBe('unsorted');

  // The large request's scan sorts the unsorted bin's chunks into their bins.
  const sort = rows.find((r) => r.stage === 'sort')!;
  expect(sort.bins.some((b) => b.kind === 'unsorted' && b.ours.length > 0)).toBe(false);
  expect(listed(sort, `s${C + 1}`)).toMatchObject({ kind: 'smallbin', index: binIndex(size('s1')) });
  expect(listed(sort, 'L')).toMatchObject({ kind: 'largebin', index: binIndex(size('L')) });

  // Fastbin frees do not merge: a1 and a2, back to back, are two chunks. With no fastbins (2.43) the second free merges them at once.
  const noMerge = step('free a1, a2');
  if (HERE.fastbins) expect(noMerge.places.map((c) => [c.place, c.size])).toEqual([['fastbin', size('a1')], ['fastbin', size('a2')]]);
  else expect(noMerge.places.map((c) => [c.place, c.size, c.within])).toEqual([['smallbin', size('a1') + size('a2'), undefined], ['merged', size('a1') + size('a2'), 'a1']]);
  expect(rows[0].places.find((c) => c.name === 'a1')!.address + BigInt(size('a1'))).toBe(rows[0].places.find((c) => c.name === 'a2')!.address);

  // P and R apart, then Q between them merges all three.
  expect(step('free P, R').places.every((c) => c.place === 'unsorted' && c.size === size('P'))).toBe(true);
  const q = step('free Q').places[0];
  expect(q).toMatchObject({ place: 'merged', within: 'P', withinPlace: 'unsorted', size: size('P') + size('Q') + size('R') });

  // The large request consolidates the fastbins: a1 + a2 into one chunk, sorted into its small bin.
  const consolidate = rows.find((r) => r.stage === 'consolidate')!;
  expect(consolidate.bins.some((b) => b.kind === 'fastbin' && b.ours.length > 0)).toBe(false);
  expect(listed(consolidate, 'a1')).toMatchObject({ kind: 'smallbin', index: binIndex(size('a1') + size('a2')) });
  expect(listed(consolidate, 'a2')).toBeUndefined();
  expect(listed(consolidate, 'P')).toMatchObject({ kind: 'largebin', index: binIndex(size('P') + size('Q') + size('R')) });

  // The small request splits L; the rest is last_remainder, and the next request is carved from it.
  const split = rows.find((r) => r.stage === 'split')!;
  const cut1 = split.got![0];
  expect(cut1.address).toBe(rows[0].places.find((c) => c.name === 'L')!.address);
  const rest1 = split.places.find((c) => c.name === 'rest of cut1')!;
  expect(rest1).toMatchObject({ place: 'unsorted', size: size('L') - cut1.size, address: cut1.address + BigInt(cut1.size) });
  expect(split.lastRemainder).toBe(rest1.address);
  const remainder = rows.find((r) => r.stage === 'remainder')!;
  expect(remainder.got![0].address).toBe(rest1.address);
  expect(remainder.lastRemainder).toBe(rest1.address + BigInt(remainder.got![0].size));

  // The chunk below top merges into it; nothing is trimmed below mp_.trim_threshold.
  const top = rows.find((r) => r.stage === 'top')!;
  const before = rows[rows.indexOf(top) - 1];
  expect(top.places[0].place).toBe('top');
  expect(top.top.address).toBe(consolidate.got![0].address);
  expect(top.top.size - before.top.size).toBe(consolidate.got![0].size);
  expect(top.top.size).toBeLessThan(p.trimThreshold);
  expect(top.programBreak).toBe(before.programBreak);

  // Every stage went as predicted: nothing is a surprise.
  expect(result.surprises).toEqual([]);
}

describe('bins', () => {
  let result: Result;
  beforeAll(async () => {
    result = (await run('bins')) as Result;
  }, 120_000);

  it('runs in a fresh child by default, with the parameters this glibc uses', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
    // Without tunables the child's glibc uses what this process's does.
    const here = mallocParams();
    expect(result.environment.tunables).toEqual({});
    const p = result.rows[0].params!;
    expect(p.tcacheCount).toBe(Number(here.values.tcacheCount));
    expect(p.tcacheBins).toBe(Number(here.values.tcacheBins));
    expect(here.globalMaxFast.found && p.globalMaxFast).toBe(here.globalMaxFast.found && here.globalMaxFast.value);
    const maxFast = HERE.fastbins ? `global_max_fast ${hex(p.globalMaxFast!)}` : 'no global_max_fast (glibc 2.43 dropped the fastbins)';
    expect(result.findings[0]).toBe(`Read in the plan's first copy: mp_.tcache_count ${p.tcacheCount}, mp_.tcache_bins ${p.tcacheBins} ` +
      `(mp_.tcache_max_bytes ${p.tcacheMaxBytes}), ${maxFast}, mp_.trim_threshold ${p.trimThreshold}.`);
  });

  it('takes each stage of the path as glibc rules it, seen in the copy after it', () => {
    checkStages(result);
  });
});

describe('bins under tunables', () => {
  it('tcache_count=3: three frees fill a tcache bin, the fourth goes on', async () => {
    const result = (await run('bins', { tunables: { 'glibc.malloc.tcache_count': 3 } })) as Result;
    expect(result.rows[0].params!.tcacheCount).toBe(3);
    expect(result.rows.map((r) => r.action)).toContain('free f1–f3');
    checkStages(result);
    const f = result.rows[0].carved!.find((c) => c.name === 'f1')!.size;
    expect(result.findings).toContain(HERE.fastbins
      ? `The 4th free of a ${hex(f)} chunk (f4) went to fastbin ${f / 16 - 2} because tcache bin ${tidx(f)} held 3 (mp_.tcache_count = 3) ` +
        `and ${hex(f)} is at most global_max_fast (${hex(result.rows[0].params!.globalMaxFast!)}).`
      : `The 4th free of a ${hex(f)} chunk (f4) went to small bin ${f / 16} because tcache bin ${tidx(f)} held 3 (mp_.tcache_count = 3), ` +
        'glibc 2.43 has no fastbins, and from 2.41 free puts a chunk of small-bin size straight into its small bin, not the unsorted bin.');
  }, 120_000);

  it('tcache_count=65535: refuses with the copies\' size and what makes it, not a stack overflow', async () => {
    // 65,535 drains for each drained size, every one carved from top and copied by each of the plan's frames.
    await expect(run('bins', { tunables: { 'glibc.malloc.tcache_count': 65535 } })).rejects.toMatchObject({
      code: 'ERR_EXPERIMENT_FAILED',
      message: expect.stringMatching(/\(libc's data \d+, \[heap\] \d+ of its \d+, thread-arena heaps \d+, the plan's own blocks \d+ for a tcache_count of 65535\), more than the \d+ bytes it allows: a smaller glibc\.malloc\.tcache_count keeps the copies within it/),
    });
  }, 120_000);
});

describe("predictedFree: where this release's free puts a chunk", () => {
  // mp_ as Debian 12's glibc initialises it, global_max_fast as it sets it: what the rule is given, not what it reads.
  const p: FrameParams = { tcacheCount: 7, tcacheBins: 64, tcacheMaxBytes: 1032, globalMaxFast: 0x80, trimThreshold: 128 << 10 };
  it('tcache while its bin has room; then a fastbin up to global_max_fast; then the unsorted bin, or from 2.41 the small bin of a small chunk', () => {
    expect(predictedFree(0xc0, 6, p)).toBe('tcache');
    expect(predictedFree(0x50, 7, p)).toBe('fastbin');
    expect(predictedFree(0xc0, 7, p, 'unsorted')).toBe('unsorted');
    expect(predictedFree(0xc0, 7, p, 'smallbin')).toBe('smallbin');
    expect(predictedFree(0x3f0, 7, p, 'smallbin')).toBe('smallbin');
    // A chunk of large-bin size (0x400 on) still goes to the unsorted bin.
    expect(predictedFree(0x400, 7, p, 'smallbin')).toBe('unsorted');
    expect(predictedFree(0x460, 0, p, 'smallbin')).toBe('unsorted');
    // global_max_fast not read: no fastbin is predicted.
    const { globalMaxFast: _, ...unread } = p;
    expect(predictedFree(0x50, 7, unread, 'smallbin')).toBe('smallbin');
  });
});
