import { beforeAll, describe, expect, it } from 'vitest';
import { BreakStep, HeapGrowthRow } from '../../lib/experiments/heap-growth';
import { describeRows } from '../../lib/experiments/heap-growth/findings';
import { breakSteps, COUNT, SIZE } from '../../lib/experiments/heap-growth/measure';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { MINSIZE, requestToChunkSize } from '../../lib/size-classes';
import { pageSize } from '../../lib/stats';

// glibc's DEFAULT_TOP_PAD on Linux; the default run has no tunables.
const TOP_PAD = 128 * 1024;
const CHUNK = requestToChunkSize(SIZE);

const growth = (rows: HeapGrowthRow[]): BreakStep[] => breakSteps(rows).filter((s) => s.op === 'malloc' && s.size > 0);

/** sysmalloc grows main_arena by chunk + top_pad + MINSIZE − top, rounded up to a page. */
function expectGlibcGrowth(steps: BreakStep[], pad: number): void {
  const page = pageSize();
  for (const s of steps) {
    expect(s.size % page).toBe(0);
    expect(s.size).toBe(Math.ceil((s.missing! + pad + MINSIZE) / page) * page);
  }
}

describe('heap-growth', () => {
  let result: ExperimentResult<HeapGrowthRow>;
  let unpadded: ExperimentResult<HeapGrowthRow>;
  beforeAll(async () => {
    [result, unpadded] = (await Promise.all([
      run('heap-growth'),
      run('heap-growth', { tunables: { 'glibc.malloc.top_pad': 0 } }),
    ])) as ExperimentResult<HeapGrowthRow>[];
  });

  it('ran in fresh children, one with top_pad=0', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
    expect(result.environment.tunables['glibc.malloc.top_pad']).toBeUndefined();
    expect(unpadded.environment.tunables['glibc.malloc.top_pad']).toBe('0');
  });

  it('has one row per malloc, then one per free, with the running total for the chart', () => {
    for (const r of [result, unpadded]) {
      expect(r.rows.length).toBe(2 * COUNT);
      r.rows.slice(0, COUNT).forEach((row, i) => {
        expect(row.op).toBe('malloc');
        expect(row.requested).toBe((i + 1) * SIZE);
        expect(row.breakAfter).toBeGreaterThanOrEqual(row.breakBefore);
      });
      expect(r.rows.at(-1)!.requested).toBe(0);
      // Rows chain: each starts where the previous ended.
      r.rows.slice(1).forEach((row, i) => {
        expect(row.breakBefore).toBe(r.rows[i].breakAfter);
        expect(row.topBefore).toBe(r.rows[i].topAfter);
      });
    }
  });

  it('grows the heap several times, by page-aligned steps of the need + 128 KiB top pad', () => {
    const steps = growth(result.rows);
    expect(steps.length).toBeGreaterThanOrEqual(3);
    expectGlibcGrowth(steps, TOP_PAD);
    for (const s of steps) expect(s.to % BigInt(pageSize())).toBe(0n);
    // The break moves only when the top chunk cannot keep MINSIZE after the chunk.
    for (const row of result.rows.filter((r) => r.op === 'malloc' && r.breakAfter > r.breakBefore)) {
      expect(CHUNK + MINSIZE).toBeGreaterThan(row.topBefore);
    }
    const extras = steps.map((s) => s.extra!);
    expect(result.findings.some((f) => f.startsWith(`Each step took ${Math.min(...extras)}`) && f.includes(`that is ${TOP_PAD} bytes`))).toBe(true);
    // The only departure allowed is the MINSIZE one, checked below.
    for (const surprise of result.surprises) expect(surprise).toMatch(/^\d+ of \d+ break moves came from requests whose \d+-byte chunk fit the top chunk/);
  });

  it('reads the top pad glibc uses, however it was set: MALLOC_TOP_PAD_=65536 gives 64 KiB steps and says so', async () => {
    // The child inherits this process's environment; no tunable is involved.
    process.env.MALLOC_TOP_PAD_ = '65536';
    let padded: ExperimentResult<HeapGrowthRow>;
    try {
      padded = (await run('heap-growth')) as ExperimentResult<HeapGrowthRow>;
    } finally {
      delete process.env.MALLOC_TOP_PAD_;
    }
    expect(padded.environment.tunables['glibc.malloc.top_pad']).toBeUndefined();
    expectGlibcGrowth(growth(padded.rows), 65536);
    expect(padded.findings.some((f) => f.includes('that is 65536 bytes') && f.includes('(mp_.top_pad, read from glibc: 65536)'))).toBe(true);
    expect(padded.surprises.some((s) => s.startsWith('The measured top pad'))).toBe(false);
  });

  it('with top_pad=0 the steps shrink to the page-rounded need', () => {
    const page = pageSize();
    const steps = growth(unpadded.rows);
    expect(steps.length).toBeGreaterThan(growth(result.rows).length);
    expectGlibcGrowth(steps, 0);
    const smallestDefault = Math.min(...growth(result.rows).map((s) => s.size));
    for (const s of steps) {
      expect(s.size).toBeLessThan(smallestDefault);
      expect(s.size).toBeLessThan(2 * page + SIZE);
    }
    expect(unpadded.findings.some((f) => f.includes('that is 0 bytes: the top pad measured (mp_.top_pad, read from glibc: 0)'))).toBe(true);
  });

  it('a top chunk that would keep less than MINSIZE is grown rather than split, and says so', () => {
    for (const r of [result, unpadded]) {
      const kept = r.rows.filter((row) => row.op === 'malloc' && row.breakAfter > row.breakBefore && row.topBefore >= CHUNK);
      for (const row of kept) expect(row.topBefore).toBeLessThan(CHUNK + MINSIZE);
      const said = r.surprises.some((s) => s.startsWith(`${kept.length} of ${growth(r.rows).length} break moves came from requests whose ${CHUNK}-byte chunk fit`));
      expect(said).toBe(kept.length > 0);
    }
  });

  it("judges a growth step against the top chunk it grew from, and says by how much that differed from the top read before it, and what was measured of why", () => {
    // This run's rows, one growth step altered as malloc_consolidate would have left it: the top read before it 11,840 bytes smaller.
    const k = result.rows.findIndex((r) => r.op === 'malloc' && r.breakAfter > r.breakBefore);
    const alter = (fastBefore: number, fastAfter: number) => describeRows({
      rows: result.rows.map((r, i) => (i === k ? { ...r, topBefore: r.topBefore - 11840, fastBefore, fastAfter } : r)), page: pageSize(),
    }, true);
    const consolidated = alter(11840, 0);
    const said = consolidated.surprises.filter((x) => / break steps did not grow from the top chunk read before them/.test(x));
    expect(said).toEqual([expect.stringMatching(new RegExp(`^1 break steps did not grow from the top chunk read before them, e\\.g\\. request ${result.rows[k].n}: .*; malloc_consolidate ran in it: mallinfo's fastbin bytes went 11840 → 0, and fastbin chunks beside the top chunk merge into it\\. `))]);
    expect(alter(0, 0).surprises.filter((x) => x.includes('nothing measured here says what changed it'))).toHaveLength(1);
    // What the step took beyond the need is counted from the top it grew from: the same as in the run as it was.
    expect(consolidated.findings.filter((f) => f.startsWith('Each step took'))).toEqual(result.findings.filter((f) => f.startsWith('Each step took')));
  });

  it('freeing everything trims the heap back to the top pad', () => {
    const page = pageSize();
    for (const [r, pad] of [[result, TOP_PAD], [unpadded, 0]] as const) {
      const trims = breakSteps(r.rows).filter((s) => s.op === 'free');
      expect(trims.length).toBeGreaterThanOrEqual(1);
      for (const t of trims) expect(t.size).toBeLessThan(0);
      const last = r.rows.at(-1)!;
      const peak = r.rows[COUNT - 1].breakAfter;
      expect(last.breakAfter).toBeLessThan(peak);
      // systrim keeps pad + MINSIZE and gives back whole pages of the rest.
      expect(last.topAfter).toBeGreaterThan(pad + MINSIZE);
      expect(last.topAfter).toBeLessThanOrEqual(pad + MINSIZE + page);
      expect(r.findings.some((f) => f.includes(`(−`) && f.includes(`${Number(peak - last.breakAfter)} B), trim)`))).toBe(true);
    }
  });

  it('runs in this process too', async () => {
    const here = (await run('heap-growth', { isolated: false })) as ExperimentResult<HeapGrowthRow>;
    expect(here.environment.isolated).toBe(false);
    expect(here.rows.length).toBe(2 * COUNT);
    expectGlibcGrowth(growth(here.rows), TOP_PAD);
    const trims = breakSteps(here.rows).filter((s) => s.op === 'free');
    // Memory this process's malloc already held may have served all 4000: then the findings say the break never moved.
    if (growth(here.rows).length === 0) expect(here.findings.some((f) => f.startsWith('The break never moved: the top chunk and free chunks'))).toBe(true);
    else if (trims.length === 0) expect(here.findings.some((f) => f.includes(': no trim;'))).toBe(true);
  });
});
