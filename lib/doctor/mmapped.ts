// Chunks glibc mapped on their own. glibc lists them nowhere, but each
// starts a mapping of its own with a header sysmalloc wrote: prev_size 0
// (from 2.43, bit 0 set for a mapping of huge pages: MMAP_HP, 921e251e8f)
// and size | IS_MMAPPED, no P and no A bit, where size is a whole number of
// pages (from 2.43, 16 bytes short of one: GlibcLayout.mmappedTail). The
// kernel merges neighbouring anonymous mappings made with the same flags
// into one map line, so a line is followed header by header while they are
// such headers; where one is not (another mapping merged in, Python's
// arenas below its blocks), the rest of the line is searched page by page
// for the next. What is found is checked against mp_.n_mmaps and
// mp_.mmapped_mem by the caller.
import { IS_MMAPPED, NON_MAIN_ARENA, PREV_INUSE } from '../chunk';
import { HUGE_PAGES_PATH, MemoryRegion } from '../maps';
import { isThreadStack } from './rss';

const FLAG_BITS = PREV_INUSE | IS_MMAPPED | NON_MAIN_ARENA;

/**
 * The most pages the search past a mapping that is no chunk reads (a GiB of
 * 4 KiB pages, 16 bytes each): the rests of lines are searched smallest
 * first, and one that does not fit in what is left is not searched.
 */
export const MAX_SEARCHED_PAGES = 1 << 18;

/** Pages searched in one read. */
const SEARCH_BATCH = 4096;

/** Reads 16 bytes at each address; undefined where it cannot. */
export type HeaderReader = (addresses: readonly bigint[]) => (Uint8Array | undefined)[];

export interface FoundMmapped {
  /** By address; `size` is the bytes of the chunk's mapping (chunksize + GlibcLayout.mmappedTail), which mp_.mmapped_mem counts. */
  chunks: { address: bigint; size: number }[];
  /** Bytes of lines past a mapping that is no chunk that were not searched (see MAX_SEARCHED_PAGES). */
  unsearched: number;
  /** False when glibc's count, known before, was met by the walks, and nothing was searched. */
  searched: boolean;
}

/**
 * Regions that may hold mmapped chunks: private read-write anonymous memory
 * that is no arena's and no thread's stack. A library's bss too: a chunk's
 * mapping that lands right above one merges into its line, which the map
 * then reads as that bss (in a node with koffi loaded and its break blocked,
 * 2 diagnoses in 7 missed a 132 KiB chunk so). Huge pages are anonymous
 * too (classify()).
 */
export function chunkCandidates(regions: readonly MemoryRegion[], pageSize: number): MemoryRegion[] {
  return regions.filter((r, i) => (r.kind === 'anonymous' || r.kind === 'bss') && r.perms === 'rw-p' && !isThreadStack(regions, i, pageSize));
}

/**
 * The mmapped chunks in `regions`: each line's headers followed in rounds
 * (one read per round), then the rest of each line whose walk met a header
 * that is no chunk's, searched at every page start. `counted`, glibc's own
 * count when it is known before the search (mallinfo2() in this process):
 * when the walks found that many chunks of that many bytes, nothing is
 * searched (in this process, ~2,700 pages of V8's and others' memory took
 * ~8 ms). `tail`: GlibcLayout.mmappedTail.
 */
export function findMmappedChunks(
  regions: readonly MemoryRegion[], pageSize: number, tail: number, read: HeaderReader, counted?: { count: number; bytes: number },
): FoundMmapped {
  const chunks: { address: bigint; size: number }[] = [];
  const ps = BigInt(pageSize);
  const past = BigInt(tail);
  const rests: Stretch[] = [];
  let walking: Stretch[] = regions.map((r) => ({ at: r.start, end: r.end, huge: r.path === HUGE_PAGES_PATH }));
  while (walking.length > 0) {
    const headers = read(walking.map((w) => w.at));
    const next: typeof walking = [];
    walking.forEach((w, i) => {
      const size = mmappedSize(headers[i], w.at, w, ps, past);
      if (size === undefined) {
        if (headers[i] !== undefined && w.at + ps < w.end) rests.push({ ...w, at: w.at + ps });
        return;
      }
      chunks.push({ address: w.at, size: Number(size) });
      if (w.at + size < w.end) next.push({ ...w, at: w.at + size });
    });
    walking = next;
  }
  const byAddress = () => chunks.sort((a, b) => (a.address < b.address ? -1 : 1));
  if (counted !== undefined && chunks.length === counted.count && chunks.reduce((n, c) => n + c.size, 0) === counted.bytes) return { chunks: byAddress(), unsearched: 0, searched: false };
  let budget = MAX_SEARCHED_PAGES;
  let unsearched = 0n;
  const length = (r: Stretch) => r.end - r.at;
  for (const rest of rests.sort((a, b) => (length(a) < length(b) ? -1 : length(a) > length(b) ? 1 : 0))) {
    const pages = Number((rest.end - rest.at) / ps);
    if (pages > budget) {
      unsearched += rest.end - rest.at;
      continue;
    }
    budget -= pages;
    search(rest, pages, ps, past, read, chunks);
  }
  return { chunks: byAddress(), unsearched: Number(unsearched), searched: true };
}

/** Part of a line, from `at` to its `end`; `huge`: the line is of huge pages (HUGE_PAGES_PATH). */
interface Stretch {
  at: bigint;
  end: bigint;
  huge: boolean;
}

/** Every page start of `rest` in turn, a batch a read, past each chunk found whole. */
function search(rest: Stretch, pages: number, ps: bigint, tail: bigint, read: HeaderReader, chunks: { address: bigint; size: number }[]): void {
  for (let k = 0; k < pages;) {
    const n = Math.min(SEARCH_BATCH, pages - k);
    const addresses = Array.from({ length: n }, (_, j) => rest.at + BigInt(k + j) * ps);
    const headers = read(addresses);
    let j = 0;
    while (j < n) {
      const size = mmappedSize(headers[j], addresses[j], rest, ps, tail);
      if (size === undefined) {
        j++;
        continue;
      }
      chunks.push({ address: addresses[j], size: Number(size) });
      j += Number(size / ps);
    }
    k += j;
  }
}

/** The mapping's size of the mmapped chunk whose header `h` is (at `at`, in a stretch of a line ending at its `end`), or undefined. */
function mmappedSize(h: Uint8Array | undefined, at: bigint, { end, huge }: Stretch, ps: bigint, tail: bigint): bigint | undefined {
  if (h === undefined || h.length < 16) return undefined;
  const view = Buffer.from(h.buffer, h.byteOffset, 16);
  const word = view.readBigUInt64LE(8);
  const size = (word & ~FLAG_BITS) + tail;
  // The layout with a tail (2.43) is the one that marks huge pages in prev_size (MMAP_HP): glibc sets it only for a
  // mapping made with MAP_HUGETLB, which the map names HUGE_PAGES_PATH.
  const prev = view.readBigUInt64LE(0) & (tail !== 0n && huge ? ~1n : ~0n);
  if (prev !== 0n || (word & FLAG_BITS) !== IS_MMAPPED || size === 0n || size % ps !== 0n || at + size > end) return undefined;
  return size;
}
