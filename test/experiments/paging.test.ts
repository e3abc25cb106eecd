import { beforeAll, describe, expect, it } from 'vitest';
import { PagingRow } from '../../lib/experiments/paging';
import { transparentHugePages } from '../../lib/experiments/paging/measure';
import { run } from '../../lib/experiments/run';
import { ExperimentResult } from '../../lib/experiments/types';
import { shortBytes } from '../../lib/format';
import { mmappedChunkSize } from '../../lib/size-classes';
import { pageSize } from '../../lib/stats';
import { MMAPPED_TAIL } from '../helpers/glibc-here';

const page = pageSize();
// Before any write, an mmapped chunk's only written page is the one holding
// its header; where transparent huge pages apply without madvise, that first
// write may bring a whole folio.
const headerPages = Math.max(1, transparentHugePages().alwaysSize / page);

function moment(rows: PagingRow[], block: PagingRow['block'], when: PagingRow['moment']): PagingRow {
  const row = rows.find((r) => r.block === block && r.moment === when);
  expect(row, `${block} ${when}`).toBeDefined();
  return row!;
}

/** Pages mincore sees for a block: its usable bytes, widened to whole pages. */
function pagesSpanned(row: PagingRow): number {
  const usable = BigInt(row.header.size - (row.header.isMmapped ? 16 : 8));
  const p = BigInt(page);
  const start = row.address - (row.address % p);
  const end = ((row.address + usable + p - 1n) / p) * p;
  return Number((end - start) / p);
}

/** Checks that hold in any process, mmapped or not. */
function checkConsistent(result: ExperimentResult<PagingRow>): void {
  const blocks = ['malloc-mmapped', 'calloc-mmapped', 'malloc-heap-1', 'malloc-heap-2', 'malloc-heap-3', 'malloc-heap-4'] as const;
  for (const block of blocks) {
    const allocated = moment(result.rows, block, 'allocated');
    const touched = moment(result.rows, block, 'touched');
    expect(allocated.totalPages).toBe(pagesSpanned(allocated));
    expect(touched.totalPages).toBe(allocated.totalPages);
    expect(allocated.residentPages).toBeLessThanOrEqual(allocated.totalPages!);
    // Every byte written: every page of the block is resident.
    expect(touched.residentPages).toBe(touched.totalPages);
    const name = allocated.call === 'calloc' ? `calloc(1, ${shortBytes(allocated.request)})` : `malloc(${shortBytes(allocated.request)})`;
    expect(result.findings.some((f) =>
      f.startsWith(name) && f.includes(`${allocated.residentPages} of ${allocated.totalPages} pages resident before writing, ${touched.residentPages} after`),
    )).toBe(true);
    const origin = allocated.header.isMmapped ? 'was mmapped on its own (M bit set' : 'came from the heap (M bit clear';
    expect(result.findings.some((f) => f.startsWith(name) && f.includes(origin))).toBe(true);
  }
  for (const block of ['malloc-mmapped', 'calloc-mmapped'] as const) {
    const allocated = moment(result.rows, block, 'allocated');
    const notMapped = result.surprises.some((s) => s.includes('was not mmapped in this run'));
    if (!allocated.header.isMmapped) expect(notMapped).toBe(true);
  }
}

describe('paging', () => {
  let result: ExperimentResult<PagingRow>;
  beforeAll(async () => {
    result = (await run('paging', { isolated: true })) as ExperimentResult<PagingRow>;
  });

  it('ran in a fresh child and says so', () => {
    expect(result.environment.isolated).toBe(true);
    expect(result.environment.pid).not.toBe(process.pid);
    expect(result.question).toMatch(/resident/);
  });

  it('mmapped 8 MiB blocks: whole pages, only the header page resident before the first write', () => {
    for (const block of ['malloc-mmapped', 'calloc-mmapped'] as const) {
      const allocated = moment(result.rows, block, 'allocated');
      expect(allocated.header.isMmapped).toBe(true);
      expect(allocated.header.size).toBe(mmappedChunkSize(allocated.request, page, MMAPPED_TAIL));
      expect(allocated.totalPages).toBe((allocated.header.size + MMAPPED_TAIL) / page);
      expect(allocated.residentPages).toBeGreaterThanOrEqual(1); // malloc wrote the header
      expect(allocated.residentPages).toBeLessThanOrEqual(headerPages);
      expect(moment(result.rows, block, 'touched').residentPages).toBe(allocated.totalPages);
    }
  });

  it('calloc of an mmapped block writes no zeros: it stays non-resident until touched, and says so', () => {
    const allocated = moment(result.rows, 'calloc-mmapped', 'allocated');
    expect(allocated.residentPages).toBeLessThanOrEqual(headerPages);
    expect(allocated.rssDeltaPages).toBeLessThan(allocated.totalPages! / 10);
    expect(result.surprises.some((s) =>
      s.startsWith('calloc is not malloc + memset here') && s.includes(`only ${allocated.residentPages} of its ${allocated.totalPages} pages`),
    )).toBe(true);
  });

  it('writing an mmapped block raises RSS by at least 90% of it, and free gives it back', () => {
    for (const block of ['malloc-mmapped', 'calloc-mmapped'] as const) {
      const touched = moment(result.rows, block, 'touched');
      expect(touched.rssDeltaPages * page).toBeGreaterThanOrEqual(0.9 * touched.request);
      const freed = moment(result.rows, block, 'freed');
      expect(-freed.rssDeltaPages * page).toBeGreaterThanOrEqual(0.9 * freed.request);
    }
  });

  it('heap blocks: below the threshold, every page resident once written, origin read off top and break', () => {
    const heap = result.rows.filter((r) => r.block.startsWith('malloc-heap') && r.moment === 'allocated');
    expect(heap).toHaveLength(4);
    for (const row of heap) {
      expect(row.header.isMmapped).toBe(false);
      expect(row.breakBefore).toBeDefined();
      if (row.breakAfter === row.breakBefore && row.topBefore! - row.topAfter! === row.header.size) {
        expect(result.findings.some((f) => f.includes(`${row.request / 1024} KiB) #`) && f.includes('it was carved from the top'))).toBe(true);
      }
      // A block whose pages were all resident before writing is flagged.
      if (row.residentPages === row.totalPages) {
        expect(result.surprises.some((s) => s.startsWith(`All ${row.totalPages} pages of the untouched malloc(64 KiB) #${row.block.at(-1)}`))).toBe(true);
      }
    }
    // The heap grows upward: each block lies above the one before when carved from the top in turn.
    const carved = heap.filter((r) => r.topBefore! - r.topAfter! === r.header.size || r.breakAfter !== r.breakBefore);
    for (let i = 1; i < carved.length; i++) expect(carved[i].address).toBeGreaterThan(carved[i - 1].address);
  });

  it('rows come in the order they were measured: the two mmapped blocks are freed after the last heap block is touched', () => {
    const order = result.rows.map((r) => `${r.block} ${r.moment}`);
    const blocks = ['malloc-mmapped', 'calloc-mmapped', 'malloc-heap-1', 'malloc-heap-2', 'malloc-heap-3', 'malloc-heap-4'];
    expect(order).toEqual([
      ...blocks.flatMap((b) => [`${b} allocated`, `${b} touched`]),
      'malloc-mmapped freed', 'calloc-mmapped freed',
    ]);
  });

  it('findings agree with the rows', () => {
    checkConsistent(result);
    const touched = moment(result.rows, 'malloc-mmapped', 'touched');
    expect(result.findings.some((f) => f.includes(`by ${shortBytes(touched.rssDeltaPages * page)} (${touched.rssDeltaPages} pages) when every byte was written`))).toBe(true);
  });

  it('runs in this process too and describes what it saw', async () => {
    const here = (await run('paging', { isolated: false })) as ExperimentResult<PagingRow>;
    expect(here.environment.isolated).toBe(false);
    expect(here.environment.pid).toBe(process.pid);
    expect(here.rows).toHaveLength(result.rows.length);
    checkConsistent(here);
  });
});
