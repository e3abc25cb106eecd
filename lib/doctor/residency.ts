// Which pages of a range are resident, from /proc/PID/pagemap: one 64-bit
// entry per page. Readable without privilege (only frame numbers are
// hidden). A page counts as resident when it is present (bit 63) and either
// mapped by this process alone (bit 56) or a file's or shared memory's page
// (bit 61): the shared zero page, which a read of never-written memory maps
// and RSS does not count, is present but neither. (A private page still
// shared with a fork's parent is missed by this rule.)
//
// A snapshot copies the arenas' memory with process_vm_readv, which can make
// every page it reads resident (on one Linux 6.18 machine a copy of a 41 MiB
// [heap] holding 3.7 MiB resident left all of it resident; another mapped the
// shared zero page). The copy skips the
// pages pagemap shows never touched (native/untouched.cc), but only where it
// can read pagemap, and a page can be touched between the two. So what is
// resident is read before the snapshot, region by region (readResidency),
// and ranges found in the snapshot are looked up there.
import fs from 'node:fs';
import type { MemoryRegion } from '../maps';

/** Entries read per pread: 8192 pages, 32 MiB of address space. */
const ENTRIES = 8192;
const PRESENT = 1n << 63n;
const COUNTED = (1n << 61n) | (1n << 56n);

export interface PagemapReader {
  /** Which pages of [start, end) (page-aligned) are resident now. */
  pages(start: bigint, end: bigint): ResidentPages;
  close(): void;
}

/**
 * One flag a page, 1 where resident, held as strings of at most ENTRIES
 * characters: nothing from malloc (a typed array's bytes would lie in the
 * snapshot taken next, and a Buffer freed later into the arena a trim
 * measures), nothing in V8's large-object space (an array of numbers for a
 * 64 MiB heap, whose pages a helper thread unmaps when it gets to them).
 */
export class ResidentPages {
  constructor(private readonly pieces: readonly string[], readonly length: number) {}

  /** The flag of page `i`: 1 resident, 0 not (or outside the range). */
  at(i: number): number {
    return i >= 0 && i < this.length ? this.pieces[Math.floor(i / ENTRIES)].charCodeAt(i % ENTRIES) : 0;
  }

  /** How many of the pages from `from` to `to` (exclusive; both clamped to the range) are resident. */
  count(from = 0, to = this.length): number {
    let n = 0;
    const end = Math.min(to, this.length);
    for (let i = Math.max(from, 0); i < end;) {
      const piece = this.pieces[Math.floor(i / ENTRIES)];
      const stop = Math.min(end, (Math.floor(i / ENTRIES) + 1) * ENTRIES);
      for (let k = i % ENTRIES; i < stop; i++, k++) n += piece.charCodeAt(k);
    }
    return n;
  }
}

/** Resident bytes of a range, as read before the snapshot. */
export interface Residency {
  resident(start: bigint, end: bigint): number;
}

/**
 * Opens `/proc/PID/pagemap` (`pid` 'self' for this process); `fail` turns
 * an fs error into the error to throw (gone, refused). Its read buffer is
 * made here, once.
 */
export function openPagemap(pid: number | 'self', pageSize: number, fail: (error: NodeJS.ErrnoException) => Error): PagemapReader {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  } catch (error) {
    throw fail(error as NodeJS.ErrnoException);
  }
  const buffer = Buffer.alloc(ENTRIES * 8);
  const words = new BigUint64Array(buffer.buffer, buffer.byteOffset, ENTRIES);
  // A batch's flags, made into its string: in V8's heap, not malloc's.
  const flags = new Array<number>(ENTRIES).fill(0);
  const ps = BigInt(pageSize);
  return {
    pages(start, end) {
      const length = Number((end - start) / ps);
      const pieces: string[] = [];
      // Past a short read (the end of what pagemap covers) every page counts as not resident.
      let short = false;
      for (let done = 0; done < length; done += ENTRIES) {
        const count = Math.min(ENTRIES, length - done);
        let read = 0;
        try {
          if (!short) read = fs.readSync(fd, buffer, 0, count * 8, Number((start / ps + BigInt(done)) * 8n));
        } catch (error) {
          throw fail(error as NodeJS.ErrnoException);
        }
        short ||= read < count * 8;
        for (let i = 0; i < count; i++) flags[i] = i < read / 8 && (words[i] & PRESENT) !== 0n && (words[i] & COUNTED) !== 0n ? 1 : 0;
        pieces.push(String.fromCharCode.apply(null, count === ENTRIES ? flags : flags.slice(0, count)));
      }
      return new ResidentPages(pieces, length);
    },
    close() {
      fs.closeSync(fd);
    },
  };
}

/** Regions whose residency doctor needs: [heap], the arena heaps and private read-write anonymous memory. */
export function residencyRegions(regions: readonly MemoryRegion[]): MemoryRegion[] {
  return regions.filter((r) => r.kind === 'heap' || r.kind === 'arena-heap' || (r.kind === 'anonymous' && r.perms === 'rw-p'));
}

/** The residency of `regions` now; a range outside them is read when asked. */
export function readResidency(pagemap: PagemapReader, regions: readonly MemoryRegion[], pageSize: number): Residency {
  const ps = BigInt(pageSize);
  const maps = regions.map((r) => ({ start: r.start, end: r.end, pages: pagemap.pages(r.start, r.end) }));
  return {
    resident(start, end) {
      let pages = 0;
      let covered = 0n;
      for (const m of maps) {
        const from = start > m.start ? start : m.start;
        const to = end < m.end ? end : m.end;
        if (from >= to) continue;
        covered += to - from;
        pages += m.pages.count(Number((from - m.start) / ps), Number((to - m.start) / ps));
      }
      if (covered < end - start) return pagemap.pages(start, end).count() * pageSize;
      return pages * pageSize;
    },
  };
}
