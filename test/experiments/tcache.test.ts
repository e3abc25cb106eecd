// Isolated runs spawn dist/experiments/child.js: run `npx tsc -p .` first.
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../lib/experiments/run';
import { TcacheRow } from '../../lib/experiments/tcache';
import { measuredCapacity, testChunks } from '../../lib/experiments/tcache/measure';
import { ExperimentResult } from '../../lib/experiments/types';
import { withArticle } from '../../lib/format';
import { requestToChunkSize } from '../../lib/size-classes';
import { mallocParams } from '../../lib/allocator-state';
import { HERE } from '../helpers/glibc-here';

type Result = ExperimentResult<TcacheRow>;

const of = (result: Result, request: number, step: TcacheRow['step']) =>
  result.rows.filter((r) => r.request === request && r.step === step);

const capacity = (result: Result, request: number) => measuredCapacity(result.rows, request).capacity;
/** The experiment's own findings: a run whose first child's heap could not grow adds one last, about its children. */
const ownFindings = (result: Result) => (result.environment.refusedChildren === undefined ? result.findings : result.findings.slice(0, -1));

const LEGEND = '(? = not a test chunk)';

/** Where a free goes once its tcache bin is full, by mallinfo: a fastbin for the fast size, or (2.43, which has none) a bin. */
const PAST_FAST = HERE.fastbins ? 'fastbin' : 'bin';

/** The run's last sentence about the capacities (from 2.43 one more follows it: no fastbin took over). */
const capacities = (result: Result) => ownFindings(result).find((f) => f.startsWith('mp_.tcache_count, read after the run'));

/** The legend for `?` is in a sentence exactly when a `?` stands for a chunk there. */
function expectLegendWherePlaced(result: Result): void {
  for (const sentence of [...result.findings, ...result.surprises]) {
    expect(sentence.includes(LEGEND), sentence).toBe(sentence.replace(LEGEND, '').includes('?'));
  }
}

describe('tcache', () => {
  let result: Result;
  let expected: number;
  /** Test chunks per size: three more than a bin holds, at least 10. */
  let n: number;
  beforeAll(async () => {
    result = (await run('tcache')) as Result;
    // The child inherits this process's GLIBC_TUNABLES and reports what it
    // ran with; without the tunable its glibc uses what this one's mp_ holds.
    const set = result.environment.tunables['glibc.malloc.tcache_count'];
    expected = set === undefined ? Number(mallocParams().values.tcacheCount) : Number(set);
    n = testChunks(expected);
  });

  it('runs in a fresh child by default', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
    expect(result.question).toMatch(/per-thread cache/);
    // Enough test chunks to fill a bin and go past it.
    expect(n).toBeGreaterThan(expected);
  });

  it('gets request2size chunks, carved back to back after the drain', () => {
    for (const request of [40, 200, 1100]) {
      const mallocs = of(result, request, 'malloc');
      expect(mallocs).toHaveLength(n);
      for (const row of mallocs) {
        expect(row.binSize).toBe(requestToChunkSize(request));
        expect(row.chunkSize).toBe(row.binSize);
      }
      // Carved from free memory: nothing of that size was cached any more.
      expect(mallocs.some((r) => r.carved || r.guardCarved)).toBe(true);
    }
  });

  it('the fast size fills tcache to the count in force, then goes to a fastbin (from 2.43, to a bin)', () => {
    expect(capacity(result, 40)).toBe(expected);
    const frees = of(result, 40, 'free');
    for (const row of frees.slice(0, expected)) expect(row.change).toEqual({ smblks: 0, fsmblks: 0, uordblks: 0, fordblks: 0, ordblks: 0 });
    for (const row of frees.slice(expected)) {
      expect(row.went).toBe(PAST_FAST);
      expect(row.change!.smblks).toBe(HERE.fastbins ? 1 : 0);
      expect(row.change!.fsmblks).toBe(HERE.fastbins ? 48 : 0);
      expect(row.change!.uordblks).toBe(-48);
    }
    expect(result.findings).toContain(
      `40-byte requests (48-byte chunks): tcache capacity measured: ${expected} (${expected} of ${n} frees of 48-byte chunks stayed in tcache; ` +
        `the other ${n - expected}: ${n - expected} to a ${PAST_FAST}).`,
    );
  });

  it('a 200-byte chunk is cached the same way, then goes to a bin; 1100 bytes is never cached', () => {
    expect(capacity(result, 200)).toBe(expected);
    for (const row of of(result, 200, 'free').slice(expected)) {
      expect(row.went).toBe('bin');
      expect(row.change!.fordblks).toBe(208);
      expect(row.change!.smblks).toBe(0);
    }
    expect(measuredCapacity(result.rows, 1100)).toEqual({ capacity: 0, bounded: true });
    expect(of(result, 1100, 'free').every((r) => r.went === 'bin' && r.change!.fordblks === 1120)).toBe(true);
    expect(of(result, 1100, 'remalloc').some((r) => r.from === 'tcache')).toBe(false);
    expect(capacities(result)).toBe(`mp_.tcache_count, read after the run, is ${expected}; capacities measured: ${expected}, ${expected}, 0 for 40, 200, 1100-byte requests.`);
    // Said from the rows, only where glibc has no fastbins (2.43) and none moved smblks.
    expect(ownFindings(result).some((f) => f.startsWith('Fastbins never took over here'))).toBe(!HERE.fastbins);
  });

  it('gives tcache chunks back last freed first', () => {
    for (const request of [40, 200]) {
      const freed = of(result, request, 'free').slice(0, expected).map((r) => r.chunk);
      const back = of(result, request, 'remalloc').slice(0, expected);
      expect(back.map((r) => r.chunk)).toEqual(freed.reverse());
      expect(back.every((r) => r.from === 'tcache')).toBe(true);
    }
    expect(result.findings.filter((f) => f.endsWith('last freed, first returned (LIFO).'))).toHaveLength(2);
  });

  it('every malloc back returned one of the freed test chunks, each once', () => {
    for (const request of [40, 200, 1100]) {
      const back = of(result, request, 'remalloc').map((r) => r.chunk);
      expect([...back].sort((a, b) => a! - b!)).toEqual(Array.from({ length: n }, (_, i) => i));
    }
  });

  it('accounts for every fastbin (from 2.43, bin) chunk on the way back, and explains batches with their numbers', () => {
    const back = of(result, 40, 'remalloc');
    // Chunks that left the arena over all mallocs back are the chunks the frees gave it.
    expect(back.reduce((sum, r) => sum + (r.leftArena ?? 0), 0)).toBe(n - expected);
    for (const row of back.filter((r) => (r.leftArena ?? 0) > 1)) {
      expect(row.change!.smblks).toBe(HERE.fastbins ? -row.leftArena! : 0);
      expect(result.surprises.some((s) => s.startsWith(`40-byte requests (48-byte chunks): malloc back number ${row.order + 1} returned one chunk`))).toBe(true);
    }
  });

  it('says where the mallocs back served from tcache beyond the frees into it came from', () => {
    let explained = 0;
    for (const request of [40, 200, 1100]) {
      const back = of(result, request, 'remalloc');
      const fromCache = back.filter((r) => r.from === 'tcache').length;
      const cap = capacity(result, request);
      const label = `${request}-byte requests (${requestToChunkSize(request)}-byte chunks)`;
      const sentence = result.findings.find((f) => f.startsWith(`${label}: ${fromCache} of ${n} mallocs back were served from tcache`));
      if (fromCache <= cap) {
        expect(sentence, label).toBeUndefined();
        continue;
      }
      const refills = back.filter((r) => (r.leftArena ?? 0) > 1);
      const moved = refills.reduce((n, r) => n + r.leftArena! - 1, 0);
      // Each chunk malloc moved into tcache is one more malloc back served from it, or still there.
      expect(moved, label).toBeGreaterThanOrEqual(fromCache - cap);
      expect(sentence, label).toContain(`though only ${cap} `);
      expect(sentence, label).toContain(`the other ${fromCache - cap} had been put there by malloc itself: `);
      for (const r of refills) expect(sentence, label).toMatch(new RegExp(`number [^:]*\\b${r.order + 1}\\b`));
      explained++;
    }
    expect(explained).toBeGreaterThan(0);
  });

  it('explains "?" in a list of chunks only where one appears', () => {
    expectLegendWherePlaced(result);
  });

  it('runs in this process too, leaving chunks of another size out of the count', async () => {
    const here = (await run('tcache', { isolated: false })) as Result;
    expect(here.environment.isolated).toBe(false);
    expect(here.environment.pid).toBe(process.pid);
    expect(here.rows.filter((r) => r.step === 'free')).toHaveLength(3 * testChunks(Number(mallocParams().values.tcacheCount)));
    for (const row of here.rows.filter((r) => r.step === 'free' && r.chunkSize !== r.binSize)) {
      expect(here.surprises.some((s) => s.includes(`test chunk ${row.chunk} got ${withArticle(row.chunkSize)}-byte chunk`))).toBe(true);
    }
    expectLegendWherePlaced(here);
    // Whatever the heap looked like, a 1100-byte chunk never stayed in tcache.
    expect(here.rows.some((r) => r.request === 1100 && (r.went === 'tcache' || r.from === 'tcache'))).toBe(false);
  });
});

describe('tcache under tunables', () => {
  it('tcache_count=0: every free of the fast size goes to a fastbin (from 2.43, a bin), from the first', async () => {
    const result = (await run('tcache', { tunables: { 'glibc.malloc.tcache_count': 0 } })) as Result;
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.tunables['glibc.malloc.tcache_count']).toBe('0');
    expect(capacity(result, 40)).toBe(0);
    expect(capacity(result, 200)).toBe(0);
    const frees = of(result, 40, 'free');
    expect(frees.every((r) => r.went === PAST_FAST)).toBe(true);
    expect(frees[0].change!.smblks).toBe(HERE.fastbins ? 1 : 0);
    expect(result.rows.some((r) => r.went === 'tcache' || r.from === 'tcache')).toBe(false);
    expect(capacities(result)).toBe('mp_.tcache_count, read after the run, is 0; capacities measured: 0, 0, 0 for 40, 200, 1100-byte requests.');
    if (!HERE.fastbins) return;
    // With no tcache in the way, the fastbin alone hands chunks back last
    // freed first. A test chunk handed out 16 bytes bigger (reported as
    // such) went to the next fastbin and is not among them.
    const exact = frees.filter((r) => r.chunkSize === 48).map((r) => r.chunk);
    expect(exact.length).toBeGreaterThanOrEqual(5);
    expect(of(result, 40, 'remalloc').map((r) => r.chunk).slice(0, exact.length)).toEqual(exact.reverse());
    for (const odd of frees.filter((r) => r.chunkSize !== 48)) {
      expect(result.surprises.some((f) => f.includes(`test chunk ${odd.chunk} got ${withArticle(odd.chunkSize)}-byte chunk`))).toBe(true);
    }
  });

  it('tcache_count=3: three frees per size stay in tcache', async () => {
    const result = (await run('tcache', { tunables: { 'glibc.malloc.tcache_count': 3 } })) as Result;
    expect(capacity(result, 40)).toBe(3);
    expect(capacity(result, 200)).toBe(3);
    expect(capacity(result, 1100)).toBe(0);
    // Test chunks handed out 16 bytes bigger are left out of the count (and reported).
    const n = of(result, 40, 'free').filter((r) => r.chunkSize === 48).length;
    expect(result.findings).toContain(
      `40-byte requests (48-byte chunks): tcache capacity measured: 3 (3 of ${n} frees of 48-byte chunks stayed in tcache; the other ${n - 3}: ${n - 3} to a ${PAST_FAST}).`,
    );
  });
});
