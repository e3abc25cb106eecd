// The residency doctor and heapSnapshot() read before their snapshot: one
// entry per page of every region they need. Those entries must not come from
// malloc, or a snapshot of this process taken right after holds them as
// chunks in use, of sizes the map's regions decide (a [heap] of 744 pages
// made one of the 752-byte chunks a diff test counted).
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inQuietChild } from '../helpers/quiet-child';

const root = path.join(__dirname, '..', '..');

describe('reading residency', () => {
  it('reads a range longer than one batch of pagemap entries, page by page, its last batch partial', () => {
    // An mmapped block nobody wrote but its header page: resident are that page and the ones written here.
    const seen = inQuietChild<{ length: number; count: number; flags: number[]; first: number; between: number; last: number; outside: number[] }>(`
      const { openPagemap } = require(${JSON.stringify(path.join(root, 'dist', 'doctor', 'residency'))});
      const pages = 8192 + 100;
      const block = h.malloc(pages * 4096);
      const start = (block.address + 4095n) & ~4095n;
      const n = pages - 1;
      const written = [0, 1, 8191, 8192, n - 1];
      for (const k of written) block.write(Number(start - block.address) + k * 4096, 'x');
      const pagemap = openPagemap('self', 4096, (e) => e);
      const flags = pagemap.pages(start, start + BigInt(n) * 4096n);
      pagemap.close();
      return {
        length: flags.length, count: flags.count(), flags: written.map((k) => flags.at(k)),
        first: flags.count(0, 8192), between: flags.count(2, 8191), last: flags.count(8192, n), outside: [flags.at(-1), flags.at(n), flags.count(n - 1, n + 50)],
      };
    `);
    expect(seen.length).toBe(8192 + 99);
    expect(seen.flags).toEqual([1, 1, 1, 1, 1]);
    expect(seen.count).toBe(5);
    expect([seen.first, seen.between, seen.last]).toEqual([3, 0, 2]);
    expect(seen.outside).toEqual([0, 0, 1]);
  });


  it('takes nothing from malloc for its pages, and counts what pagemap says', () => {
    const seen = inQuietChild<{ pages: number; resident: number; grew: number; heapPages: number; heapResident: number }>(`
      const { openPagemap, readResidency, residencyRegions } = require(${JSON.stringify(path.join(root, 'dist', 'doctor', 'residency'))});
      require('node:v8').setFlagsFromString('--expose-gc');
      const gc = require('node:vm').runInNewContext('gc');
      const pagemap = openPagemap('self', 4096, (e) => e);
      const regions = residencyRegions(h.maps());
      const heap = regions.find((r) => r.kind === 'heap');
      // A first read compiles what it runs (V8's compiler takes its memory from malloc); it is kept, so that
      // no collection during the second can give back what the first took.
      const first = readResidency(pagemap, regions, 4096);
      gc();
      const before = h.mallinfo2().uordblks;
      const residency = readResidency(pagemap, regions, 4096);
      const after = h.mallinfo2().uordblks;
      globalThis.kept = first;
      const pages = regions.reduce((n, r) => n + Number((r.end - r.start) / 4096n), 0);
      const resident = regions.reduce((n, r) => n + residency.resident(r.start, r.end), 0) / 4096;
      const heapResident = residency.resident(heap.start, heap.end) / 4096;
      const heapPages = Number((heap.end - heap.start) / 4096n);
      pagemap.close();
      return { pages, resident, grew: Number(after - before), heapPages, heapResident };
    `);
    // One byte a page from malloc would have grown the heap's in-use bytes by more than this.
    expect(seen.pages).toBeGreaterThan(1000);
    expect(seen.grew).toBeLessThan(seen.pages / 4);
    expect(seen.resident).toBeGreaterThan(0);
    expect(seen.resident).toBeLessThanOrEqual(seen.pages);
    // [heap] holds resident pages, and no more than it has (what it holds moves between two reads: no equality).
    expect(seen.heapResident).toBeGreaterThan(0);
    expect(seen.heapResident).toBeLessThanOrEqual(seen.heapPages);
  });
});
