// What the decoded lists say of the walked chunks, for the doctor: the runs
// of adjacent chunks in the bins, the tcache chunks and the chunks in use of
// a given size, each from the lists and one binary search a listed chunk.
// Each agrees with the places placeChunks gives.
import { EXACT_LIMIT } from '../exact';
import { chunkSize, FREE_BIT } from '../walk/chunk';
import { BinChunk, binColumns, ListedChunks } from './bin-chunks';
import { ArenaBins } from './bins';
import { indexIn, isFencepost } from './places';
import { RegionWalk, stoppedAt } from './heap-walks';
import { ThreadCache } from './tcaches';

/** A listed chunk's key in Listed: its address as a number (Number() of it at 2^53 or above, as for a tcache's chunks). */
function numberOf(chunks: ListedChunks, i: number): number {
  const at = chunks.addressNumber(i);
  return at < EXACT_LIMIT ? at : Number(chunks.address(i));
}

export interface Listed {
  /** Chunks in a fastbin, the unsorted, a small or a large bin (and in no tcache), keyed by address as a number. */
  binned: Set<number>;
  /** Chunks in a tcache, with their size. */
  cached: Map<number, number>;
  /** The tcache structs' chunks. */
  structs: Set<number>;
}

/** The listed chunks, keyed as placeChunks keys them (a tcache listing wins over a bin's, as it does there). */
export function listedChunks(bins: readonly ArenaBins[], tcaches: readonly ThreadCache[]): Listed {
  const binned = new Set<number>();
  for (const b of bins) {
    for (const list of [b.fastbins, b.unsorted, b.smallbins, b.largebins]) {
      for (const bin of list) {
        const chunks = binColumns(bin);
        for (let i = 0; i < chunks.length; i++) binned.add(numberOf(chunks, i));
      }
    }
  }
  const cached = new Map<number, number>();
  for (const t of tcaches) for (const bin of t.bins) for (const c of bin.chunks) cached.set(Number(c.address), c.size);
  for (const at of cached.keys()) binned.delete(at);
  return { binned, cached, structs: new Set(tcaches.map((t) => Number(t.address))) };
}

/**
 * Runs of adjacent binned chunks (bins and fastbins) in one walked region:
 * what malloc_consolidate leaves as one chunk. From the binned chunks in
 * address order, each looked up in the walk (a chunk the walk never met, or
 * its top, is in no run), rather than a look-up per chunk walked.
 */
export function binnedRuns(w: RegionWalk, listed: Listed): { start: bigint; size: bigint }[] {
  const runs: { start: bigint; size: bigint }[] = [];
  const { table } = w.walk;
  const start = Number(w.start);
  const end = Number(w.end);
  let runStart = -1;
  let runEnd = -1;
  let last = -2;
  for (const at of sortedBinned(listed)) {
    if (at < start || at >= end) continue;
    const i = indexIn(w, at);
    if (i < 0 || i === w.walk.top) continue;
    if (i === last + 1 && at === runEnd) runEnd = at + chunkSize(table, i);
    else {
      if (runStart >= 0) runs.push({ start: BigInt(runStart), size: BigInt(runEnd - runStart) });
      runStart = at;
      runEnd = at + chunkSize(table, i);
    }
    last = i;
  }
  if (runStart >= 0) runs.push({ start: BigInt(runStart), size: BigInt(runEnd - runStart) });
  return runs;
}

/**
 * Runs of adjacent binned chunks of `bins` (one arena's) that no walk (of
 * any arena) holds, each chunk once: a non-contiguous main_arena's chunks
 * in memory glibc took with mmap, listed nowhere, where no walk can start,
 * and those past where a walk stopped (a gap before main_arena's top).
 * From the lists alone: free() merges two free chunks side by side unless
 * one is in a fastbin, and malloc_consolidate merges those (a tcache chunk
 * counts as in use).
 */
export function unwalkedRuns(bins: ArenaBins, walks: readonly RegionWalk[], listed: Listed): { start: bigint; size: bigint }[] {
  // From the columns, by number: the few chunks no walk holds become objects.
  // A walk that stopped holds no chunk past where it stopped.
  const spans = walks.map((w) => [Number(w.start), Number(stoppedAt(w))]);
  const chunks: BinChunk[] = [];
  for (const bin of [...bins.fastbins, ...bins.unsorted, ...bins.smallbins, ...bins.largebins]) {
    const list = binColumns(bin);
    for (let i = 0; i < list.length; i++) {
      const at = numberOf(list, i);
      if (!listed.binned.has(at)) continue;
      // An exact `at` compares with a bound exactly, converted or not: one at 2^53 or above is above it either way.
      if (at < EXACT_LIMIT ? spans.some(([start, end]) => at >= start && at < end) : walks.some((w) => list.address(i) >= w.start && list.address(i) < stoppedAt(w))) continue;
      chunks.push(list.chunk(i));
    }
  }
  chunks.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const runs: { start: bigint; size: bigint }[] = [];
  for (const c of chunks) {
    const last = runs[runs.length - 1];
    // A chunk in two lists (or overlapping the one before: a corrupt size) is counted once.
    if (last !== undefined && c.address < last.start + last.size) continue;
    if (last !== undefined && last.start + last.size === c.address) last.size += BigInt(c.size);
    else runs.push({ start: c.address, size: BigInt(c.size) });
  }
  return runs;
}

const sortedCache = new WeakMap<Listed, Float64Array>();

function sortedBinned(listed: Listed): Float64Array {
  let sorted = sortedCache.get(listed);
  if (sorted === undefined) {
    sorted = Float64Array.from(listed.binned).sort();
    sortedCache.set(listed, sorted);
  }
  return sorted;
}

/**
 * Bytes of tcache chunks that are chunks of `walks` (the regions of one
 * arena, as placeChunks counts them), or lie in one past where its walk
 * stopped (stoppedAt).
 */
export function cachedBytes(walks: readonly RegionWalk[], listed: Listed): number {
  let bytes = 0;
  for (const [at, size] of listed.cached) {
    const w = walks.find((r) => at >= Number(r.start) && at < Number(r.end));
    if (w !== undefined && (indexIn(w, at) >= 0 || at >= Number(stoppedAt(w)))) bytes += size;
  }
  return bytes;
}

/** The chunks in use (placeChunks' `in-use`) of at least `min` bytes: count and bytes. */
export function inUseAtLeast(walks: readonly RegionWalk[], listed: Listed, min: number): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const w of walks) {
    const { table } = w.walk;
    const start = Number(w.start);
    for (let i = 0; i < table.count; i++) {
      const size = chunkSize(table, i);
      if (size < min || i === w.walk.top || (table.bits[i] & FREE_BIT) !== 0) continue;
      const at = start + table.offsets[i];
      if (listed.binned.has(at) || listed.cached.has(at) || listed.structs.has(at)) continue;
      if (isFencepost(w, i)) continue;
      count++;
      bytes += size;
    }
  }
  return { count, bytes };
}
