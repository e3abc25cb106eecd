import { beforeAll, describe, expect, it } from 'vitest';
import { trimSummary } from '../../lib/experiments/measure';
import { Bracket, MmapThresholdRow, ThresholdPhase, ThresholdProbeRow, ThresholdTrimRow } from '../../lib/experiments/mmap-threshold';
import { bracketOf } from '../../lib/experiments/mmap-threshold/prober';
import { bracketText, holds } from '../../lib/experiments/mmap-threshold/bracket';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { MINSIZE } from '../../lib/size-classes';
import { pageSize } from '../../lib/stats';
import { MMAPPED_TAIL } from '../helpers/glibc-here';
import { blockedBreakSaid } from '../helpers/blocked-break';

const KiB = 1024;
const MiB = 1024 * KiB;
const CAP = 32 * MiB;

type Result = ExperimentResult<MmapThresholdRow>;

const probes = (r: Result, phase: ThresholdPhase) =>
  r.rows.filter((row): row is ThresholdProbeRow => row.kind === 'probe' && row.phase === phase);
const sourceOf = (r: Result, phase: ThresholdPhase) => probes(r, phase).filter((row) => row.role === 'source').pop()!;
const conclusive = (row: ThresholdProbeRow) => row.servedBy === 'mmap' || row.servedBy === 'brk';

/** A bracket narrowed to one chunk size: both ends found, 16 bytes apart. */
function expectTight(b: Bracket, what: string): { lo: number; hi: number } {
  expect(b.lo, `${what}: no probe grew the break`).toBeDefined();
  expect(b.hi, `${what}: no probe was mmapped`).toBeDefined();
  expect(b.hi! - b.lo!, `${what}: ${bracketText(b)}`).toBe(16);
  return { lo: b.lo!, hi: b.hi! };
}

/** The rules every probe row obeys, whatever the threshold. */
function expectRowRules(r: Result): void {
  for (const row of r.rows.filter((x): x is ThresholdProbeRow => x.kind === 'probe')) {
    const where = `${row.phase} ${row.role} malloc(${row.request})`;
    if (row.mmapped) {
      // sysmalloc is only reached when the top chunk cannot hold the request; it maps whole pages (from 2.43, 16 bytes past the chunk).
      expect(row.topBefore, where).toBeLessThan(row.chunkSize + MINSIZE);
      expect((row.headerSize + MMAPPED_TAIL) % pageSize(), where).toBe(0);
      expect(row.headerSize, where).toBeGreaterThanOrEqual(row.chunkSize + (MMAPPED_TAIL === 0 ? 8 : 0));
      expect(row.breakAfter, where).toBe(row.breakBefore);
    } else {
      expect(row.headerSize, where).toBeGreaterThanOrEqual(row.chunkSize);
    }
    if (row.servedBy === 'top') expect(row.topBefore, where).toBeGreaterThanOrEqual(row.chunkSize + MINSIZE);
  }
}

/** Within a phase the threshold does not move: every mmapped probe is above every probe that grew the break. */
function expectMonotonic(r: Result, phase: ThresholdPhase): void {
  const seen = probes(r, phase).filter((row) => row.role === 'probe' || row.role === 'sweep');
  const below = seen.filter((row) => row.servedBy === 'brk').map((row) => row.chunkSize);
  const above = seen.filter((row) => row.servedBy === 'mmap').map((row) => row.chunkSize);
  if (below.length > 0 && above.length > 0) expect(Math.max(...below), phase).toBeLessThan(Math.min(...above));
}

describe('mmap-threshold', () => {
  let result: Result;
  beforeAll(async () => {
    result = (await run('mmap-threshold')) as Result;
  });

  it('ran in a fresh child by default', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
    expect(result.question).toBe('When does malloc switch to mmap, and how does the threshold move?');
  });

  it('probe rows follow malloc\'s rules and each phase saw one threshold', () => {
    expectRowRules(result);
    for (const phase of ['start', 'after-sweep', 'rise', 'cap-64MiB', 'cap-32MiB', 'cap-below-32MiB', 'mallopt'] as const) {
      expectMonotonic(result, phase);
    }
  });

  it('brackets the threshold at the start to one chunk size and says whether it is the default', ({ skip }) => {
    skip(blockedBreakSaid(result) !== undefined, blockedBreakSaid(result));
    const start = expectTight(bracketOf(result.rows, 'start'), 'start');
    // Nothing was freed before the start phase's probes were all measured.
    expect(probes(result, 'start').some((row) => row.role === 'source')).toBe(false);
    expect(result.findings.some((f) => f.startsWith(`Before this run freed anything, the mmap threshold lay in (${start.lo}, ${start.hi}]`))).toBe(true);
    // glibc's own threshold, read before the probes, lies in the bracket they found.
    const read = result.findings.map((f) => /^mp_\.mmap_threshold, read from glibc before the probes, was (\d+); the bracket holds it\.$/.exec(f)).find((m) => m !== null);
    expect(read).toBeDefined();
    const threshold = Number(read![1]);
    expect(holds(start, threshold)).toBe(true);
    if (threshold === 128 * KiB) {
      expect(result.findings).toContain('That is glibc\'s default threshold, 131072.');
    } else {
      expect(result.surprises.some((s) => s.includes(`not at glibc's default 131072 when this run started but ${threshold} (in (${start.lo}, ${start.hi}] by the probes)`))).toBe(true);
    }
  });

  it('the sweep: mmapped requests were at or above the threshold, heap requests above it came from memory malloc held', ({ skip }) => {
    skip(blockedBreakSaid(result) !== undefined, blockedBreakSaid(result));
    const start = expectTight(bracketOf(result.rows, 'start'), 'start');
    const sweep = probes(result, 'sweep');
    expect(sweep).toHaveLength(16);
    expect(sweep.map((r) => r.request).every((req, i) => i === 0 || req - sweep[i - 1].request === 4 * KiB)).toBe(true);
    const mapped = sweep.filter((r) => r.mmapped);
    const heap = sweep.filter((r) => !r.mmapped);
    // Centred on the start bracket: both sides are seen.
    expect(mapped.length).toBeGreaterThan(0);
    expect(heap.length).toBeGreaterThan(0);
    for (const r of mapped) expect(r.chunkSize).toBeGreaterThan(start.lo);
    for (const r of heap.filter((row) => row.servedBy === 'brk')) expect(r.chunkSize).toBeLessThan(start.hi);
    for (const r of heap.filter((row) => row.chunkSize >= start.hi)) {
      expect(['top', 'free chunk']).toContain(r.servedBy);
      expect(result.surprises.some((s) => s.startsWith(`malloc(${r.request}) (chunk ${r.chunkSize}`))).toBe(true);
    }
    expect(result.findings.some((f) => f.includes(`consistent with the (${start.lo}, ${start.hi}] found first`))).toBe(true);
  });

  it('freeing an mmapped chunk raised the threshold to its size, and the trim threshold to twice that', ({ skip }) => {
    skip(blockedBreakSaid(result) !== undefined, blockedBreakSaid(result));
    const source = sourceOf(result, 'rise');
    expect(source.mmapped).toBe(true);
    const rise = expectTight(bracketOf(result.rows, 'rise'), 'rise');
    expect(rise.lo < source.headerSize && source.headerSize <= rise.hi, `${source.headerSize} in ${bracketText(rise)}`).toBe(true);
    // The same request that was mmapped before the free came from the heap after it.
    const again = probes(result, 'rise').find((r) => r.role === 'probe' && r.request === source.request && conclusive(r))!;
    expect(again.servedBy).toBe('brk');
    expect(result.findings.some((f) => f.includes(`moved the threshold`) && f.includes(`holds the freed chunk's size ${source.headerSize}`))).toBe(true);

    const trim = result.rows.filter((r): r is ThresholdTrimRow => r.kind === 'free-run');
    const t = trimSummary(trim);
    expect(t.firstTrim, 'the break never moved down').toBeDefined();
    expect(t.keptTop).toBeDefined();
    // Trimming on free happens when the top reaches the trim threshold, 2 × the new mmap threshold.
    expect(t.keptTop!).toBeLessThan(2 * rise.hi);
    expect(t.trimmedTop!).toBeGreaterThan(2 * rise.lo);
    expect(result.findings.some((f) => f.includes(`overlaps twice the mmap threshold, (${2 * rise.lo}, ${2 * rise.hi}]`))).toBe(true);
  });

  it('the threshold never rises above 32 MiB', ({ skip }) => {
    skip(blockedBreakSaid(result) !== undefined, blockedBreakSaid(result));
    const rise = bracketOf(result.rows, 'rise');
    const big = sourceOf(result, 'cap-64MiB');
    expect(big.mmapped && big.headerSize > CAP).toBe(true);
    expect(bracketOf(result.rows, 'cap-64MiB')).toEqual(rise);

    const exact = sourceOf(result, 'cap-32MiB');
    if (MMAPPED_TAIL !== 0) {
      // From 2.43 a mapping of exactly 32 MiB holds a chunk 16 bytes less, whose size word is within the ceiling: it raises the threshold.
      expect(exact.headerSize).toBe(CAP - 16);
      expect(exact.rawSize).toBe(BigInt(CAP - 16) | 2n);
      expect(expectTight(bracketOf(result.rows, 'cap-32MiB'), 'cap-32MiB').hi).toBe(CAP - 16);
      const mib33 = probes(result, 'cap-below-32MiB').find((r) => r.request === 33 * MiB && conclusive(r))!;
      expect(mib33.mmapped).toBe(true);
      return;
    }
    // A chunk of exactly 32 MiB: its size word with the M bit is above the ceiling.
    expect(exact.headerSize).toBe(CAP);
    expect(exact.rawSize).toBe(BigInt(CAP) | 2n);
    expect(bracketOf(result.rows, 'cap-32MiB')).toEqual(rise);
    expect(result.surprises.some((s) => s.includes(`size word, flag bits included, is ${BigInt(CAP) | 2n}`))).toBe(true);

    const below = sourceOf(result, 'cap-below-32MiB');
    expect(below.headerSize).toBe(CAP - pageSize());
    const after = expectTight(bracketOf(result.rows, 'cap-below-32MiB'), 'cap-below-32MiB');
    expect(after.hi).toBe(below.headerSize);
    const mib33 = probes(result, 'cap-below-32MiB').find((r) => r.request === 33 * MiB && conclusive(r))!;
    expect(mib33.mmapped).toBe(true);
  });

  it('mallopt(M_MMAP_THRESHOLD) fixes the threshold: freeing a 1 MiB mmapped chunk no longer raises it', ({ skip }) => {
    skip(blockedBreakSaid(result) !== undefined, blockedBreakSaid(result));
    expect(sourceOf(result, 'mallopt').mmapped).toBe(true);
    const frozen = expectTight(bracketOf(result.rows, 'mallopt'), 'mallopt');
    expect(frozen.hi).toBe(256 * KiB);
    const half = probes(result, 'mallopt').find((r) => r.request === 512 * KiB && conclusive(r))!;
    expect(half.mmapped).toBe(true);
  });

  it('under glibc.malloc.mmap_threshold=65536 the threshold is 64 KiB and does not rise', async ({ skip }) => {
    const tuned = (await run('mmap-threshold', { tunables: { 'glibc.malloc.mmap_threshold': 65536 } })) as Result;
    skip(blockedBreakSaid(tuned) !== undefined, blockedBreakSaid(tuned));
    expect(tuned.environment.tunables['glibc.malloc.mmap_threshold']).toBe('65536');
    expectRowRules(tuned);
    const start = expectTight(bracketOf(tuned.rows, 'start'), 'start');
    expect(start.hi).toBe(65536);
    expect(tuned.findings).toContain('The tunable glibc.malloc.mmap_threshold=65536 was in force; the bracket holds it.');

    const source = sourceOf(tuned, 'rise');
    expect(source.mmapped).toBe(true);
    const rise = expectTight(bracketOf(tuned.rows, 'rise'), 'rise');
    expect(rise.hi).toBe(65536);
    const again = probes(tuned, 'rise').find((r) => r.role === 'probe' && r.request === source.request && conclusive(r))!;
    expect(again.mmapped).toBe(true);
    expect(tuned.findings.some((f) => f.includes('did not move the threshold'))).toBe(true);
    for (const phase of ['after-sweep', 'cap-64MiB', 'cap-32MiB', 'cap-below-32MiB'] as const) {
      expect(bracketOf(tuned.rows, phase), phase).toEqual({ lo: 65520, hi: 65536 });
    }
  });

  it('says a threshold fixed by MALLOC_MMAP_THRESHOLD_ is fixed, reading mp_.no_dyn_threshold', async ({ skip }) => {
    // The child inherits this process's environment.
    process.env.MALLOC_MMAP_THRESHOLD_ = '300000';
    let fixed: Result;
    try {
      fixed = (await run('mmap-threshold')) as Result;
    } finally {
      delete process.env.MALLOC_MMAP_THRESHOLD_;
    }
    skip(blockedBreakSaid(fixed) !== undefined, blockedBreakSaid(fixed));
    const start = expectTight(bracketOf(fixed.rows, 'start'), 'start');
    expect(holds(start, 300000)).toBe(true);
    expect(fixed.findings).toContain('mp_.mmap_threshold, read from glibc before the probes, was 300000; the bracket holds it.');
    expect(fixed.findings.some((f) => f.startsWith('mp_.no_dyn_threshold was 1: a setting'))).toBe(true);
    expect(fixed.surprises.some((s) => s.includes("not at glibc's default"))).toBe(false);
  });

  it('runs in this process too, without the mallopt part', async ({ skip }) => {
    const here = (await run('mmap-threshold', { isolated: false })) as Result;
    skip(blockedBreakSaid(here) !== undefined, blockedBreakSaid(here));
    expect(here.environment.pid).toBe(process.pid);
    expectRowRules(here);
    expectTight(bracketOf(here.rows, 'start'), 'start');
    expect(probes(here, 'mallopt')).toHaveLength(0);
    expect(here.findings.some((f) => f.startsWith('The mallopt(M_MMAP_THRESHOLD, 262144) part did not run'))).toBe(true);
  });
});
