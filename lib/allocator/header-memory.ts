// Copied memory that holds, of each walked region, only the first bytes of
// every chunk (and the whole of the chunks a tcache struct could be): what
// the decoders read of a heap, since every list leads from chunk header to
// chunk header. A gigabyte of heap in a million chunks is 32 MiB of
// headers. The regions are walked while they are read (ChunkWalker), a
// window at a time; the other ranges (libc's data, each heap's heap_info
// and malloc_state) are copied whole.
import { hex } from '../format';
import { zeroedBytes } from '../fresh-memory';
import { chunkAtOrBefore, chunkSize, ChunkWalker, Offsets, StoredWalk } from '../walk/chunk';
import { CopiedRange, copiedMemory, holds, MemorySource, notCopied } from './memory-source';

/** Bytes kept from each chunk's start: prev_size, size, fd, bk, and a large bin's fd_nextsize and bk_nextsize. */
export const HEADER_BYTES = 48;
/**
 * Headers are kept in blocks of this many chunks, so that a store grows
 * without copying what it holds: 768 KiB each, mapped by the addon (from
 * malloc, each block was mapped on its own and, once collected, raised this
 * process's mmap threshold to its size) and given back with the copies.
 * Under 2 MiB, so that no block asks for huge pages (MapForCopy): one a
 * region, each with a few headers written, then took 2 MiB pages whole (a
 * doctor() of a python3 with 16 thread arenas peaked 11 MiB higher with
 * blocks of 3 MiB than with 4 KiB pages).
 */
const BLOCK = 1 << 14;

/** Chunk headers, HEADER_BYTES each, chunk i's at i × HEADER_BYTES (the bytes past a region's end zero). */
export class HeaderStore {
  /** The blocks, for releaseCopies to give back. */
  readonly blocks: Uint8Array[] = [];
  private readonly words: Uint32Array[] = [];
  private readonly longs: BigUint64Array[] = [];

  /** Chunk i's header: `length` bytes (a multiple of 4) of `from`, a word view, from byte `offset` (a multiple of 4). */
  put(i: number, from: Uint32Array, offset: number, length: number): void {
    const block = Math.floor(i / BLOCK);
    while (this.blocks.length <= block) {
      // Faulted in a page at a time as headers are written: a small heap's headers fill the start of one.
      const bytes = zeroedBytes(BLOCK * HEADER_BYTES, false);
      this.blocks.push(bytes);
      this.words.push(new Uint32Array(bytes.buffer));
      this.longs.push(new BigUint64Array(bytes.buffer));
    }
    // Word by word: a subarray per chunk costs more than the copy.
    const to = this.words[block];
    const at = ((i % BLOCK) * HEADER_BYTES) >>> 2;
    const src = offset >>> 2;
    for (let k = 0; k < length >>> 2; k++) to[at + k] = from[src + k];
  }

  /** Whether bytes `within` … `within + length` of chunk i's header equal `from` (a word view) from byte `at`; all multiples of 4. */
  same(i: number, within: number, length: number, from: Uint32Array, at: number): boolean {
    const to = this.words[Math.floor(i / BLOCK)];
    const mine = (((i % BLOCK) * HEADER_BYTES) + within) >>> 2;
    const theirs = at >>> 2;
    for (let k = 0; k < length >>> 2; k++) if (to[mine + k] !== from[theirs + k]) return false;
    return true;
  }

  /** The 64-bit word at byte `within` (a multiple of 8) of chunk i's header. */
  word(i: number, within: number): bigint {
    return this.longs[Math.floor(i / BLOCK)][((i % BLOCK) * HEADER_BYTES + within) >>> 3];
  }

  /** Chunk i's header, `length` bytes from byte `within`. */
  header(i: number, within = 0, length = HEADER_BYTES - within): Uint8Array {
    const at = (i % BLOCK) * HEADER_BYTES + within;
    return this.blocks[Math.floor(i / BLOCK)].subarray(at, at + length);
  }
}

/** One walked region's chunk headers. */
export interface HeaderRegion {
  label: string;
  /** The address chunk offsets count from. */
  base: bigint;
  /** Where the region ends, as an offset from base. */
  end: number;
  count: number;
  /** Each chunk's offset from base, then (at `count`) where the walk ended (ChunkColumns). */
  offsets: Offsets;
  headers: HeaderStore;
  /** Chunks kept whole, by index: those of a tcache struct's size. */
  kept: ReadonlyMap<number, Uint8Array>;
}

/** A MemorySource over `full` ranges copied whole and the chunk headers of `regions`. */
export function headerMemory(full: readonly CopiedRange[], regions: readonly HeaderRegion[]): MemorySource {
  const whole = copiedMemory(full);
  const sorted = [...regions].sort((a, b) => (a.base < b.base ? -1 : 1));
  // Addresses as numbers (exact: user space ends at 2^47): most reads are headers, a million of them for a big heap.
  const bases = sorted.map((r) => Number(r.base));
  const regionOf = (address: number): number => {
    for (let k = 0; k < sorted.length; k++) if (address >= bases[k] && address < bases[k] + sorted[k].end) return k;
    return -1;
  };
  // The chunk the last read found: the decoders read a chunk's words one after another.
  let lastK = -1;
  let lastI = -1;
  /** Sets lastK, lastI to the chunk whose header holds [address, address + length), or returns false. */
  const find = (address: number, length: number): boolean => {
    if (lastK >= 0) {
      const r = sorted[lastK];
      const within = address - bases[lastK] - r.offsets[lastI];
      if (within >= 0 && within + length <= Math.min(HEADER_BYTES, r.end - r.offsets[lastI])) return true;
    }
    const k = regionOf(address);
    if (k < 0) return false;
    const r = sorted[k];
    const at = address - bases[k];
    // From the last chunk found when it is in this region: a list's next chunk is most often near it.
    const i = chunkAtOrBefore(r.offsets, r.count, at, k === lastK ? lastI : -1);
    if (i < 0 || at - r.offsets[i] + length > Math.min(HEADER_BYTES, r.end - r.offsets[i])) return false;
    lastK = k;
    lastI = i;
    return true;
  };
  const locate = (address: bigint, length: number): Uint8Array | undefined => {
    if (address >= 1n << 53n) return undefined;
    const n = Number(address);
    if (find(n, length)) return sorted[lastK].headers.header(lastI, n - bases[lastK] - sorted[lastK].offsets[lastI], length);
    const k = regionOf(n);
    if (k < 0) return undefined;
    const r = sorted[k];
    const i = chunkAtOrBefore(r.offsets, r.count, n - bases[k]);
    const kept = i < 0 ? undefined : r.kept.get(i);
    const within = n - bases[k] - (i < 0 ? 0 : r.offsets[i]);
    return kept !== undefined && within + length <= kept.length ? kept.subarray(within, within + length) : undefined;
  };
  const inWhole = (address: bigint, length: number): Uint8Array | undefined => (holds(whole, address, length) ? whole.read(address, length) : undefined);
  return {
    ranges: whole.ranges,
    held: sorted.flatMap((r) => r.headers.blocks),
    read(address: bigint, length: number): Uint8Array {
      const bytes = locate(address, length) ?? inWhole(address, length);
      if (bytes !== undefined) return bytes;
      const region = sorted.find((x) => address >= x.base && address < x.base + BigInt(x.end));
      if (region === undefined) throw notCopied(address, length, 'it lies outside every copied range and every walked region');
      const walked = region.count === 0 ? region.base : region.base + BigInt(region.offsets[region.count]);
      throw notCopied(address, length, address >= walked
        ? `it lies past where the walk of ${region.label} ${hex(region.base)} ended (${hex(walked)}), and a header copy keeps only the chunks walked`
        : `only the first ${HEADER_BYTES} bytes of each chunk of ${region.label} ${hex(region.base)} were copied`);
    },
    word(address: bigint): bigint | undefined {
      if (address >= 1n << 53n || address % 8n !== 0n) return undefined;
      const n = Number(address);
      if (find(n, 8)) return sorted[lastK].headers.word(lastI, n - bases[lastK] - sorted[lastK].offsets[lastI]);
      const bytes = inWhole(address, 8);
      return bytes === undefined ? undefined : new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
    },
    holds(address: bigint, length: number): boolean {
      return locate(address, length) !== undefined || inWhole(address, length) !== undefined;
    },
  };
}

/**
 * Walks one region a window at a time and keeps its chunk headers: `read`
 * fills `window` with `length` bytes of the region from offset `at`, or
 * says why it could not (the walk then stops with that reason). Chunks of
 * a size in `whole` (a tcache struct's) are kept whole; the walker must
 * have been made with `header: HEADER_BYTES` and `whole` their largest.
 * `failure`: why a read failed, which also ends the walk.
 */
export function walkInWindows(
  walker: ChunkWalker, end: number, label: string, window: Uint8Array, whole: readonly number[],
  read: (at: number, length: number) => string | undefined,
): { walk: StoredWalk; region: HeaderRegion; failure?: string } {
  const words = new Uint32Array(window.buffer, window.byteOffset, window.length >>> 2);
  const largest = Math.max(0, ...whole);
  const store = new HeaderStore();
  const kept = new Map<number, Uint8Array>();
  let failure: string | undefined;
  for (let at = walker.start; ;) {
    const length = Math.min(window.length, end - at);
    failure = read(at, length);
    if (failure !== undefined) break;
    const from = walker.count;
    const fed = walker.feed(window.subarray(0, length), at);
    const columns = walker.columns();
    const { offsets } = columns;
    for (let i = from; i < walker.count; i++) {
      const off = offsets[i] - at;
      const size = chunkSize(columns, i);
      store.put(i, words, off, Math.min(HEADER_BYTES, end - offsets[i]));
      if (size <= largest && whole.includes(size)) kept.set(i, window.slice(off, off + size));
    }
    if (fed.done) break;
    if (fed.next === at) {
      failure = `a window of ${window.length} bytes cannot hold the chunk at ${hex(walker.base + BigInt(at))}`;
      break;
    }
    at = fed.next;
  }
  const walk = walker.result(failure);
  const region = { label, base: walker.base, end, count: walker.count, offsets: walk.table.offsets, headers: store, kept };
  return { walk, region, ...(failure === undefined ? {} : { failure }) };
}
