// Chunks glibc mapped on their own. glibc lists them nowhere, but each
// starts a mapping of its own with a header sysmalloc wrote: prev_size 0
// and size (a whole number of pages) | IS_MMAPPED, no P and no A bit. The
// kernel may merge neighbouring anonymous mappings into one region, so a
// region is followed header by header while they are such headers. What is
// found is checked against mp_.n_mmaps and mp_.mmapped_mem by the caller.
import { IS_MMAPPED, NON_MAIN_ARENA, PREV_INUSE } from '../chunk';
import type { MemoryRegion } from '../maps';
import { isThreadStack } from './rss';

const FLAG_BITS = PREV_INUSE | IS_MMAPPED | NON_MAIN_ARENA;

/** Reads 16 bytes at each address; undefined where it cannot. */
export type HeaderReader = (addresses: readonly bigint[]) => (Uint8Array | undefined)[];

/** Regions that may hold mmapped chunks: private read-write anonymous memory that is no arena's and no thread's stack. */
export function chunkCandidates(regions: readonly MemoryRegion[], pageSize: number): MemoryRegion[] {
  return regions.filter((r, i) => r.kind === 'anonymous' && r.perms === 'rw-p' && !isThreadStack(regions, i, pageSize));
}

/** The mmapped chunks in `regions`, following each region's headers in rounds (one read per round). */
export function findMmappedChunks(regions: readonly MemoryRegion[], pageSize: number, read: HeaderReader): { address: bigint; size: number }[] {
  const found: { address: bigint; size: number }[] = [];
  const ps = BigInt(pageSize);
  let walking = regions.map((r) => ({ at: r.start, end: r.end }));
  while (walking.length > 0) {
    const headers = read(walking.map((w) => w.at));
    const next: typeof walking = [];
    walking.forEach((w, i) => {
      const h = headers[i];
      if (h === undefined || h.length < 16) return;
      const view = Buffer.from(h.buffer, h.byteOffset, 16);
      const prevSize = view.readBigUInt64LE(0);
      const word = view.readBigUInt64LE(8);
      const size = word & ~FLAG_BITS;
      if (prevSize !== 0n || (word & FLAG_BITS) !== IS_MMAPPED || size === 0n || size % ps !== 0n || w.at + size > w.end) return;
      found.push({ address: w.at, size: Number(size) });
      if (w.at + size < w.end) next.push({ at: w.at + size, end: w.end });
    });
    walking = next;
  }
  return found.sort((a, b) => (a.address < b.address ? -1 : 1));
}
