// findMmappedChunks over memory made here (a reader of 16-byte headers by
// address): headers followed from each line's start, and the rest of a line
// past a mapping that is no chunk searched page by page, within its budget.
import { describe, expect, it } from 'vitest';
import { chunkCandidates, findMmappedChunks, HeaderReader, MAX_SEARCHED_PAGES } from '../../lib/doctor/mmapped';
import fs from 'node:fs';
import path from 'node:path';
import { MemoryRegion, parseSmaps } from '../../lib/maps';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Pure: no heap is read.
heapRoomNotNeeded();

const PAGE = 4096;
const P = BigInt(PAGE);

function header(prevSize: bigint, sizeWord: bigint): Uint8Array {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(prevSize, 0);
  b.writeBigUInt64LE(sizeWord, 8);
  return b;
}

/** Memory whose page starts hold `headers` (every other readable page start reads zero); `unreadable` pages fail. */
function memory(headers: Map<bigint, Uint8Array>, unreadable: Set<bigint> = new Set()): { read: HeaderReader; reads: bigint[] } {
  const reads: bigint[] = [];
  const read: HeaderReader = (addresses) => addresses.map((a) => {
    reads.push(a);
    return unreadable.has(a) ? undefined : headers.get(a) ?? new Uint8Array(16);
  });
  return { read, reads };
}

const region = (start: bigint, pages: number): MemoryRegion => ({ start, end: start + BigInt(pages) * P } as MemoryRegion);
const mmapped = (pages: number) => header(0n, BigInt(pages) * P | 2n);

describe('findMmappedChunks', () => {
  it('finds chunks past a mapping that is no chunk, following each from the one found before it', () => {
    const base = 0x7f00_0000_0000n;
    // Two pages of something else (its first word not a chunk's), a chunk of 3 pages, one of 2, then 4 pages of something else and a last chunk of 1.
    const headers = new Map([
      [base, header(1n, 0x1234n)],
      [base + 2n * P, mmapped(3)],
      [base + 5n * P, mmapped(2)],
      [base + 7n * P, header(7n, 7n)],
      [base + 11n * P, mmapped(1)],
    ]);
    // Inside the 3-page chunk, a page that looks like a header (a block's data can): the search goes past it.
    headers.set(base + 3n * P, mmapped(1));
    const { read } = memory(headers);
    const found = findMmappedChunks([region(base, 12)], PAGE, 0, read);
    expect(found).toEqual({
      chunks: [
        { address: base + 2n * P, size: 3 * PAGE },
        { address: base + 5n * P, size: 2 * PAGE },
        { address: base + 11n * P, size: PAGE },
      ],
      unsearched: 0,
      searched: true,
    });
  });

  it('takes only whole headers glibc writes: prev_size 0, IS_MMAPPED alone, whole pages inside the line', () => {
    const base = 0x7f10_0000_0000n;
    const headers = new Map([
      [base, header(16n, 2n * P | 2n)], // prev_size not 0 (a memalign'd chunk inside its mapping)
      [base + P, header(0n, 2n * P | 3n)], // P bit
      [base + 2n * P, header(0n, 2n * P | 6n)], // A bit
      [base + 3n * P, header(0n, 2n * P + 16n | 2n)], // not whole pages
      [base + 4n * P, header(0n, 9n * P | 2n)], // past the line's end
      [base + 6n * P, mmapped(2)],
    ]);
    expect(findMmappedChunks([region(base, 8)], PAGE, 0, memory(headers).read).chunks).toEqual([{ address: base + 6n * P, size: 2 * PAGE }]);
  });

  it('reads 2.43\'s headers, whose size is 16 bytes short of the mapping (mmappedTail), as mappings of whole pages', () => {
    const base = 0x7f18_0000_0000n;
    const headers = new Map([
      [base, header(0n, 3n * P - 16n | 2n)],
      [base + 3n * P, header(0n, 2n * P | 2n)], // a 2.42 header: 16 bytes too many for 2.43
      [base + 5n * P, header(0n, P - 16n | 2n)],
    ]);
    expect(findMmappedChunks([region(base, 6)], PAGE, 16, memory(headers).read).chunks).toEqual([
      { address: base, size: 3 * PAGE },
      { address: base + 5n * P, size: PAGE },
    ]);
    // The same memory read with 2.42's rule takes only the 2-page header.
    expect(findMmappedChunks([region(base, 6)], PAGE, 0, memory(headers).read).chunks).toEqual([{ address: base + 3n * P, size: 2 * PAGE }]);
  });

  it('reads 2.43\'s mark of a huge-page mapping, bit 0 of prev_size (MMAP_HP), only where the layout has it, in a line of huge pages', () => {
    const base = 0x7f1c_0000_0000n;
    const headers = new Map([[base, header(1n, 2n * P - 16n | 2n)]]);
    const huge = { ...region(base, 2), path: '/anon_hugepage' } as MemoryRegion;
    expect(findMmappedChunks([huge], PAGE, 16, memory(headers).read).chunks).toEqual([{ address: base, size: 2 * PAGE }]);
    // glibc marks only a mapping made with MAP_HUGETLB: in ordinary pages, prev_size 1 is no header it wrote.
    expect(findMmappedChunks([region(base, 2)], PAGE, 16, memory(headers).read).chunks).toEqual([]);
    // Before 2.43 prev_size is 0 at a mapping's start: 1 is no such header.
    const old = new Map([[base, header(1n, 2n * P | 2n)]]);
    expect(findMmappedChunks([region(base, 2)], PAGE, 0, memory(old).read).chunks).toEqual([]);
  });

  it('searches huge pages too, which the map names after a file (glibc.malloc.hugetlb=2 maps chunks there), and no line of no access', () => {
    // A C program on glibc 2.36 under glibc.malloc.hugetlb=2 with huge pages reserved (the program's own lines left out).
    const regions = parseSmaps(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'maps', 'huge-pages.smaps'), 'utf8'));
    const huge = chunkCandidates(regions, PAGE).filter((r) => r.path === '/anon_hugepage').map((r) => r.start);
    expect(huge).toEqual([0x7f6da7800000n, 0x7f6da7a00000n, 0x7f6da9600000n]);
  });

  it('searches the rests of lines smallest first, within MAX_SEARCHED_PAGES, and says how much it did not search', () => {
    // Each rest fits the budget alone, not both: the smaller is searched, the bigger is not read at all.
    const small = 0x7f20_0000_0000n;
    const big = 0x7f30_0000_0000n;
    const headers = new Map([[small + 2n * P, mmapped(1)], [big + 4n * P, mmapped(1)]]);
    const bigPages = MAX_SEARCHED_PAGES - 1;
    const { read, reads } = memory(headers);
    const found = findMmappedChunks([region(big, bigPages + 1), region(small, 4)], PAGE, 0, read);
    expect(found).toEqual({ chunks: [{ address: small + 2n * P, size: PAGE }], unsearched: bigPages * PAGE, searched: true });
    expect(reads.filter((a) => a > big)).toEqual([]);
  });

  it('walks on past a chunk that runs over the end of a read of pages, never taking a header inside it', () => {
    // A chunk from page 4090 to 4100 of a rest of 5,000 pages (reads of 4,096 pages): a header-like page inside it, at 4097, is data.
    const base = 0x7f70_0000_0000n;
    const headers = new Map([
      [base, header(5n, 5n)],
      [base + 4091n * P, mmapped(10)],
      [base + 4098n * P, mmapped(1)],
      [base + 4101n * P, mmapped(2)],
    ]);
    const found = findMmappedChunks([region(base, 5001)], PAGE, 0, memory(headers).read);
    expect(found.chunks).toEqual([{ address: base + 4091n * P, size: 10 * PAGE }, { address: base + 4101n * P, size: 2 * PAGE }]);
  });

  it('reads nothing more of a line whose start cannot be read, and passes over a page it cannot read', () => {
    const base = 0x7f40_0000_0000n;
    const other = 0x7f50_0000_0000n;
    const headers = new Map([[base + P, mmapped(1)], [other + 2n * P, mmapped(1)]]);
    const { read, reads } = memory(headers, new Set([base, other + P]));
    const found = findMmappedChunks([region(base, 2), region(other, 3)], PAGE, 0, read);
    expect(found.chunks).toEqual([{ address: other + 2n * P, size: PAGE }]);
    expect(reads.filter((a) => a >= base && a < base + 2n * P)).toEqual([base]);
  });

  it("searches nothing when the walks found as many chunks of as many bytes as glibc's own count says", () => {
    const base = 0x7f60_0000_0000n;
    const headers = new Map([[base, mmapped(2)], [base + 4n * P, mmapped(1)]]);
    // The walk from the line's start finds the first; the second lies past two pages of something else.
    const walked = memory(headers);
    expect(findMmappedChunks([region(base, 5)], PAGE, 0, walked.read, { count: 1, bytes: 2 * PAGE })).toEqual({ chunks: [{ address: base, size: 2 * PAGE }], unsearched: 0, searched: false });
    expect(walked.reads).toEqual([base, base + 2n * P]);
    // Counted as two, the rest is searched.
    const searched = memory(headers);
    expect(findMmappedChunks([region(base, 5)], PAGE, 0, searched.read, { count: 2, bytes: 3 * PAGE }).chunks).toHaveLength(2);
    expect(searched.reads.length).toBeGreaterThan(2);
  });
});
