// The pure rules a process under glibc.malloc.hugetlb needs, on maps made
// here: which lines are shaped like a thread heap of a given size, how the
// resident-memory table splits a line merged across a heap's bounds, and
// what malloc_trim(0) can give back inside huge pages.
// test/remote/huge-pages.test.ts runs them on real processes.
import { describe, expect, it } from 'vitest';
import type { Arena } from '../../lib/allocator/arenas';
import { shapedHeaps } from '../../lib/allocator/take-snapshot';
import { rssRows } from '../../lib/doctor/rss';
import { trimInHugePages } from '../../lib/doctor/trim';
import type { MmappedChunks } from '../../lib/doctor/types';
import { parseMaps, MemoryRegion } from '../../lib/maps';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Maps made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const MiB = 1n << 20n;
const PAGE = 4096;

/** A map from `[start, end, perms, path]` lines. */
function map(lines: [bigint, bigint, string, string?][]): MemoryRegion[] {
  const text = lines.map(([s, e, perms, path]) => `${s.toString(16)}-${e.toString(16)} ${perms} 00000000 ${path === undefined ? '00:00 0' : '00:11 77'} ${path ?? ''}\n`).join('');
  return parseMaps(text);
}

/** `regions` with resident bytes, each line's in `rss` (bytes) by its start. */
function withRss(regions: MemoryRegion[], rss: Map<bigint, number>): MemoryRegion[] {
  return regions.map((r) => ({ ...r, rss: rss.get(r.start) ?? 0 }));
}

const arena = (address: bigint, heaps: bigint[]) => ({ address, kind: 'thread', heaps: heaps.map((h) => ({ address: h })) }) as unknown as Arena;
const NO_MMAPPED = { found: 0, chunks: [] } as unknown as MmappedChunks;

describe('shapedHeaps', () => {
  const base = 0x7f00_0000_0000n;
  it('takes a heap of four huge pages in one line or several, with its reserved tail, of huge pages or not', () => {
    const regions = map([
      [base, base + 2n * MiB, 'rw-p'], [base + 2n * MiB, base + 8n * MiB, '---p'],
      [base + 8n * MiB, base + 10n * MiB, 'rw-p', '/anon_hugepage (deleted)'], [base + 10n * MiB, base + 12n * MiB, 'rw-p', '/anon_hugepage (deleted)'],
      [base + 12n * MiB, base + 16n * MiB, '---p', '/anon_hugepage (deleted)'],
      // Used to its last byte: read-write up to the boundary.
      [base + 16n * MiB, base + 24n * MiB, 'rw-p'],
      // Its tail merged with a guard page right above it.
      [base + 24n * MiB, base + 25n * MiB, 'rw-p'], [base + 25n * MiB, base + 32n * MiB + 4096n, '---p'],
      // Its read-write part merged with a thread's stack right below it, across an earlier boundary.
      [base + 37n * MiB, base + 50n * MiB, 'rw-p'], [base + 50n * MiB, base + 56n * MiB, '---p'],
    ]);
    // Each read from the heap's start to the end of its read-write lines.
    expect(shapedHeaps(regions, 8n * MiB).map((h) => [h.start, h.end, h.kind])).toEqual([
      [base, base + 2n * MiB, 'arena-heap'], [base + 8n * MiB, base + 12n * MiB, 'arena-heap'], [base + 16n * MiB, base + 24n * MiB, 'arena-heap'],
      [base + 24n * MiB, base + 25n * MiB, 'arena-heap'], [base + 48n * MiB, base + 50n * MiB, 'arena-heap'],
    ]);
  });

  it('leaves out lines not shaped like one: too long, ending short of the boundary, a file\'s, executable, no tail, a file\'s or a long tail', () => {
    const regions = map([
      [base + 4096n, base + 2n * MiB, 'rw-p'], [base + 2n * MiB, base + 8n * MiB, '---p'],
      [base + 8n * MiB, base + 24n * MiB, 'rw-p'],
      [base + 32n * MiB, base + 33n * MiB, 'rw-p'], [base + 33n * MiB, base + 39n * MiB, '---p'],
      [base + 40n * MiB, base + 42n * MiB, 'rw-p', '/usr/lib/data.bin'], [base + 42n * MiB, base + 48n * MiB, '---p'],
      [base + 48n * MiB, base + 49n * MiB, 'rw-p'], [base + 49n * MiB, base + 56n * MiB, 'rwxp'],
      // Across a boundary, but with nothing of no access after it.
      [base + 60n * MiB, base + 66n * MiB, 'rw-p'],
      // A tail of a file's, and one that goes on a reservation's length past the boundary.
      [base + 72n * MiB, base + 73n * MiB, 'rw-p'], [base + 73n * MiB, base + 80n * MiB, '---p', '/usr/lib/libx.so'],
      [base + 80n * MiB, base + 81n * MiB, 'rw-p'], [base + 81n * MiB, base + 89n * MiB, '---p'],
    ]);
    expect(shapedHeaps(regions, 8n * MiB)).toEqual([]);
  });
});

describe('rssRows of heaps the map does not show as such', () => {
  const base = 0x7f10_0000_0000n;
  const resident = (rss: Map<bigint, number>) => (start: bigint, end: bigint) => [...rss.entries()].filter(([s]) => s >= start && s < end).reduce((n, [, v]) => n + v, 0);

  it('counts each heap\'s whole reservation with its arena, and splits a line merged across its start by pagemap', () => {
    // main_arena's mapped memory (1 MiB, 64 KiB resident) merged with heap 2's read-write part (256 KiB resident) into one line.
    const regions = withRss(map([
      [base, base + 2n * MiB, 'rw-p'], [base + 2n * MiB, base + 8n * MiB, '---p'],
      [base + 15n * MiB, base + 18n * MiB, 'rw-p'], [base + 18n * MiB, base + 24n * MiB, '---p'],
    ]), new Map([[base, 512 << 10], [base + 15n * MiB, (64 + 256) << 10]]));
    const pages = new Map([[base + 15n * MiB, 64 << 10], [base + 16n * MiB, 256 << 10]]);
    const { total, rows } = rssRows(regions, [arena(base + 48n, [base]), arena(base + 16n * MiB + 48n, [base + 16n * MiB])], NO_MMAPPED, PAGE, 8n * MiB, resident(pages));
    expect(total).toBe((512 + 64 + 256) << 10);
    expect(rows.map((r) => ({ kind: r.kind, arena: r.arena, size: r.size, rss: r.rss }))).toEqual([
      { kind: 'arena-heaps', arena: base + 48n, size: 8 << 20, rss: 512 << 10 },
      { kind: 'arena-heaps', arena: base + 16n * MiB + 48n, size: 8 << 20, rss: 256 << 10 },
      { kind: 'other-anonymous', arena: undefined, size: 1 << 20, rss: 64 << 10 },
    ]);
  });

  it('gives a line two heaps cover whole no row of its own: what pagemap did not count stays with the second heap', () => {
    // Heap 1 used to its last byte, merged with heap 2's read-write part right above it; smaps counts 4 KiB more than pagemap.
    const regions = withRss(map([[base, base + 10n * MiB, 'rw-p'], [base + 10n * MiB, base + 16n * MiB, '---p']]), new Map([[base, (1024 + 4) << 10]]));
    const pages = new Map([[base, 768 << 10], [base + 8n * MiB, 256 << 10]]);
    const { rows } = rssRows(regions, [arena(base + 48n, [base]), arena(base + 8n * MiB + 48n, [base + 8n * MiB])], NO_MMAPPED, PAGE, 8n * MiB, resident(pages));
    expect(rows.map((r) => ({ kind: r.kind, size: r.size, rss: r.rss }))).toEqual([
      { kind: 'arena-heaps', size: 8 << 20, rss: 768 << 10 },
      { kind: 'arena-heaps', size: 8 << 20, rss: (256 + 4) << 10 },
    ]);
  });
});

describe('trimInHugePages', () => {
  const base = 0x7f20_0000_0000n;
  const huge = [{ start: base, end: base + 8n * MiB }];
  const range = (start: bigint, end: bigint, source: 'free-chunk' | 'top' = 'free-chunk') => ({ arena: 1n, source, start, end });

  it('keeps a range in huge pages that starts off a huge page; from one that starts on one, lets go of its whole huge pages', () => {
    const { ranges, kept } = trimInHugePages([
      range(base + 4096n, base + 1n * MiB),
      range(base + 2n * MiB, base + 5n * MiB),
      range(base + 6n * MiB, base + 7n * MiB),
      range(base + 16n * MiB, base + 17n * MiB),
      range(base + 4096n * 3n, base + 8192n * 3n, 'top'),
    ], huge, 2n * MiB, true);
    expect(ranges).toEqual([range(base + 2n * MiB, base + 4n * MiB), range(base + 16n * MiB, base + 17n * MiB), range(base + 4096n * 3n, base + 8192n * 3n, 'top')]);
    expect(kept).toEqual([range(base + 4096n, base + 1n * MiB), range(base + 4n * MiB, base + 5n * MiB), range(base + 6n * MiB, base + 7n * MiB)]);
  });

  it('splits a range that meets huge pages where they begin and end; a refused part ends the call, the rest of the range kept too', () => {
    const { ranges, kept } = trimInHugePages([
      // From ordinary pages into huge ones: the huge part starts on a huge page.
      range(base - 1n * MiB, base + 3n * MiB),
      // From huge pages off a boundary into ordinary ones: refused at once.
      range(base + 7n * MiB, base + 9n * MiB),
      // Whole huge pages only: nothing kept back.
      range(base + 4n * MiB, base + 6n * MiB),
    ], huge, 2n * MiB, true);
    expect(ranges).toEqual([range(base - 1n * MiB, base), range(base, base + 2n * MiB), range(base + 4n * MiB, base + 6n * MiB)]);
    expect(kept).toEqual([range(base + 2n * MiB, base + 3n * MiB), range(base + 7n * MiB, base + 8n * MiB), range(base + 8n * MiB, base + 9n * MiB)]);
  });

  it('keeps every part in huge pages before Linux 5.18, and nothing where no huge page size is known (mp_.hp_pagesize 0)', () => {
    expect(trimInHugePages([range(base, base + 4n * MiB)], huge, 2n * MiB, false)).toEqual({ ranges: [], kept: [range(base, base + 4n * MiB)] });
    const all = [range(base + 4096n, base + 1n * MiB)];
    expect(trimInHugePages(all, huge, 0n, true)).toEqual({ ranges: all, kept: [] });
  });
});
