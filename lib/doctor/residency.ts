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
// resident is read before the snapshot (readResidency), and ranges found in
// the snapshot are looked up there: [heap], the arena heaps and the mmapped
// chunks, found before the snapshot too. Not every private read-write
// anonymous region: one may be a reservation far larger than any heap
// (AddressSanitizer's shadow is 14 TiB, 2^32 pages), whose pagemap is not
// worth reading entry by entry. The one range the snapshot can find outside
// these, a non-contiguous main_arena's memory outside [heap], is read when
// asked, after a copy that skipped its untouched pages.
//
// The flags read before the snapshot are kept in memory mapped for them,
// not malloc'd: a Uint8Array of a byte a page was a chunk in use in this
// process's snapshot, of a size the map decided (a 741-page mmapped chunk
// made a 752-byte one).
import fs from 'node:fs';
import { mappedBytes, releaseBytes, zeroedBytes } from '../fresh-memory';
import type { MemoryRegion } from '../maps';
import type { AddressRange } from '../allocator/locate-input';

/** Entries read per pread: 8192 pages, 32 MiB of address space. */
const ENTRIES = 8192;
// The flags of an entry are in its high 32 bits: bit 63 is that word's bit 31.
const PRESENT = 1 << 31;
const COUNTED = (1 << 29) | (1 << 24);

export interface PagemapReader {
  /** One byte per page of [start, end) (page-aligned): 1 when resident now; written into `into` when given. */
  pages(start: bigint, end: bigint, into?: Uint8Array): Uint8Array;
  close(): void;
}

/** Resident bytes of a range, as read before the snapshot. */
export interface Residency {
  resident(start: bigint, end: bigint): number;
  /** Gives back the memory the flags were read into. */
  release(): void;
}

/**
 * Opens `/proc/PID/pagemap` (`pid` 'self' for this process); `fail` turns
 * an fs error into the error to throw (gone, refused). Its read buffer is
 * made here, once, mapped as the flags are (given back by `close`).
 */
export function openPagemap(pid: number | 'self', pageSize: number, fail: (error: NodeJS.ErrnoException) => Error): PagemapReader {
  let fd: number;
  try {
    fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
  } catch (error) {
    throw fail(error as NodeJS.ErrnoException);
  }
  const buffer = mappedBytes(ENTRIES * 8);
  const halves = new Uint32Array(buffer.buffer, buffer.byteOffset, ENTRIES * 2);
  const ps = BigInt(pageSize);
  return {
    pages(start, end, into) {
      const out = into ?? zeroedBytes(Number((end - start) / ps));
      for (let done = 0; done < out.length;) {
        const count = Math.min(ENTRIES, out.length - done);
        let read: number;
        try {
          read = fs.readSync(fd, buffer, 0, count * 8, Number((start / ps + BigInt(done)) * 8n));
        } catch (error) {
          throw fail(error as NodeJS.ErrnoException);
        }
        for (let i = 0; i < read / 8; i++) {
          const high = halves[2 * i + 1];
          out[done + i] = (high & PRESENT) !== 0 && (high & COUNTED) !== 0 ? 1 : 0;
        }
        if (read < count * 8) break;
        done += count;
      }
      return out;
    },
    close() {
      fs.closeSync(fd);
      releaseBytes([buffer]);
    },
  };
}

/** The ranges whose residency doctor needs: [heap], the arena heaps and the mmapped chunks. */
export function residencyRanges(regions: readonly MemoryRegion[], mmapped: readonly { address: bigint; size: number }[]): AddressRange[] {
  return [
    ...regions.filter((r) => r.kind === 'heap' || r.kind === 'arena-heap'),
    ...mmapped.map((c) => ({ start: c.address, end: c.address + BigInt(c.size) })),
  ];
}

/** The residency of `ranges` now; a range outside them is read when asked. */
export function readResidency(pagemap: PagemapReader, ranges: readonly AddressRange[], pageSize: number): Residency {
  const ps = BigInt(pageSize);
  const counts = ranges.map((r) => Number((r.end - r.start) / ps));
  const total = counts.reduce((n, c) => n + c, 0);
  const flags = total === 0 ? undefined : mappedBytes(total);
  let at = 0;
  const maps = ranges.map((r, i) => {
    const pages = pagemap.pages(r.start, r.end, flags?.subarray(at, at + counts[i]));
    at += counts[i];
    return { start: r.start, end: r.end, pages };
  });
  return {
    release() {
      if (flags !== undefined) releaseBytes([flags]);
    },
    resident(start, end) {
      let pages = 0;
      let covered = 0n;
      for (const m of maps) {
        const from = start > m.start ? start : m.start;
        const to = end < m.end ? end : m.end;
        if (from >= to) continue;
        covered += to - from;
        for (let i = Number((from - m.start) / ps); i < Number((to - m.start) / ps); i++) pages += m.pages[i];
      }
      if (covered < end - start) return pagemap.pages(start, end).reduce((n, p) => n + p, 0) * pageSize;
      return pages * pageSize;
    },
  };
}
