// Copies of this process's memory leave the pages never touched alone: a
// snapshot of a [heap] that grew by 40 MiB nobody wrote keeps them out of
// memory and still decodes; those pages copy as the zeros a plain read
// gives; readMemory leaves them alone too, yet reads the pages of a file
// mapping that are not in memory from the file, not as zeros.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { maps, malloc, readMemory } from '../../lib/index';
import { openPagemap } from '../../lib/doctor/residency';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { inQuietChild } from '../helpers/quiet-child';

// The snapshot runs in a quiet child; the block read here is above malloc's
// mmap threshold, mapped on its own whatever room the break has.
heapRoomNotNeeded();

const root = path.join(__dirname, '..', '..');
const PAGE = 4096n;
const UNTOUCHED = 40 << 20;

describe('copies that leave pages never touched alone', () => {
  it('a snapshot of a [heap] grown by 40 MiB nobody wrote leaves those pages out of memory, and decodes', () => {
    const seen = inQuietChild<{
      chunkBefore: number; chunkAfter: number; chunkPages: number; heapBefore: number; heapAfter: number;
      consistent: boolean; madeResident?: string; mismatches: unknown[]; topSize: number; keepcost: number; mainIsLast: boolean;
      untouched: number; same: boolean; heapPages: number;
    }>(`
      const { openPagemap } = require(${JSON.stringify(path.join(root, 'dist', 'doctor', 'residency'))});
      const fs = require('node:fs');
      // Every malloc from [heap], with no pad: the 40 MiB block grows [heap] by 40 MiB that nothing writes.
      h.mallopt('M_MMAP_MAX', 0);
      h.mallopt('M_TOP_PAD', 0);
      const block = h.runPlan([{ op: 'malloc', size: ${UNTOUCHED} }], { keep: true }).steps[0].address;
      const pagemap = openPagemap('self', 4096, (e) => e);
      const start = (block + 4095n) & ~4095n;
      const end = (block + ${UNTOUCHED}n) & ~4095n;
      const present = () => pagemap.pages(start, end).reduce((a, b) => a + b, 0);
      const heapRss = () => {
        const lines = fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n');
        const at = lines.findIndex((l) => l.endsWith('[heap]'));
        return Number(/^Rss:\\s+(\\d+) kB/.exec(lines.slice(at + 1).find((l) => l.startsWith('Rss:')))[1]) / 4;
      };
      const chunkBefore = present();
      const heapBefore = heapRss();
      const s = h.allocatorSnapshot();
      const chunkAfter = present();
      const heapAfter = heapRss();
      const t = h.allocatorTotals(s);
      const main = h.arenas(s).arenas.find((a) => a.kind === 'main');
      // The same range copied twice in one native call: leaving pages alone, then reading every page.
      const heap = h.maps().find((r) => r.kind === 'heap');
      const brk = h.programBreak();
      const both = h.runPlan([
        { op: 'read', address: heap.start, length: brk - heap.start, anonymous: true },
        { op: 'read', address: heap.start, length: brk - heap.start },
      ]).steps;
      return {
        chunkBefore, chunkAfter, chunkPages: Number((end - start) / 4096n), heapBefore, heapAfter,
        consistent: s.consistent, madeResident: s.madeResident, mismatches: t.mismatches, topSize: Number(main.top.size), keepcost: Number(s.mallinfo.keepcost),
        mainIsLast: main.top.address + BigInt(main.top.size) === s.programBreak,
        untouched: both[0].untouchedPages, same: Buffer.compare(both[0].bytes, both[1].bytes) === 0, heapPages: Number((brk - heap.start) / 4096n),
      };`);
    // The block may start in free space [heap] already had; most of it is new and absent.
    expect(seen.chunkPages).toBeGreaterThan(10000);
    expect(seen.chunkBefore).toBeLessThan(seen.chunkPages / 10);
    // Exact: nothing writes inside the block, and the copy reads none of its absent pages
    // (a plain copy made every page of the block resident).
    expect(seen.chunkAfter).toBe(seen.chunkBefore);
    // [heap] as a whole (smaps Rss, in pages) grows by what runs between the two readings and
    // allocates from malloc: the snapshot's probe, Node's reads of /proc, and the Buffers its
    // copies come back in, which hold at most what was resident already (28 to 206 pages where
    // seen, against the 10,240 a plain copy of the block made resident).
    expect(seen.heapAfter - seen.heapBefore).toBeLessThanOrEqual(seen.heapBefore);
    expect(seen.heapAfter - seen.heapBefore).toBeLessThan(seen.chunkPages / 10);
    expect(seen.consistent).toBe(true);
    expect(seen.madeResident).toBeUndefined();
    expect(seen.mismatches).toEqual([]);
    expect(seen.topSize).toBe(seen.keepcost);
    expect(seen.mainIsLast).toBe(true);
    // Left alone, the pages copy as the zeros that reading them gives, and the rest as read.
    expect(seen.untouched).toBeGreaterThanOrEqual(seen.chunkPages - seen.chunkBefore);
    expect(seen.untouched).toBeLessThan(seen.heapPages);
    expect(seen.same).toBe(true);
  });

  it('readMemory leaves the pages of an untouched block alone, and reads a file mapping\'s absent pages from the file', () => {
    const pagemap = openPagemap('self', Number(PAGE), (e) => e);
    try {
      // An mmapped chunk nobody wrote: every page past its header is absent.
      const block = malloc(8 << 20);
      const start = (block.address + PAGE - 1n) & ~(PAGE - 1n);
      const end = start + (4n << 20n);
      const count = () => pagemap.pages(start, end).reduce((a, b) => a + b, 0);
      expect(count()).toBe(0);
      const copy = readMemory(start, end - start);
      expect(copy.every((b) => b === 0)).toBe(true);
      expect(count()).toBe(0);
      block.free();

      // A page of a file mapping that is not in memory reads from the file: it is no zero page.
      const file = maps().filter((r) => r.readable && r.inode !== 0 && !r.deleted && r.path.startsWith('/') && r.size >= 16 * Number(PAGE))
        .flatMap((r) => {
          const size = fs.statSync(r.path).size;
          const pages = pagemap.pages(r.start, r.end);
          const at = pages.findIndex((p, i) => p === 0 && r.offset + (i + 1) * Number(PAGE) <= size);
          return at < 0 ? [] : [{ region: r, address: r.start + BigInt(at) * PAGE, offset: r.offset + at * Number(PAGE) }];
        })
        .find((c) => {
          const bytes = Buffer.alloc(Number(PAGE));
          const fd = fs.openSync(c.region.path, 'r');
          fs.readSync(fd, bytes, 0, bytes.length, c.offset);
          fs.closeSync(fd);
          return bytes.some((b) => b !== 0);
        });
      expect(file, 'a file mapping with a page not in memory whose bytes are not all zero').toBeDefined();
      const expected = Buffer.alloc(Number(PAGE));
      const fd = fs.openSync(file!.region.path, 'r');
      fs.readSync(fd, expected, 0, expected.length, file!.offset);
      fs.closeSync(fd);
      expect(Buffer.compare(readMemory(file!.address, PAGE), expected)).toBe(0);
    } finally {
      pagemap.close();
    }
  });
});
