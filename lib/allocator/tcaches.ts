// Every thread's tcache_perthread_struct, found in the arenas' memory by
// what it holds: a chunk of the struct's size, in use, whose every bin is
// a list exactly as long as its count, of chunks of that bin's size in the
// arenas' memory, each marked with the same key.
import { hex } from '../format';
import { defineOwn, own } from '../validate';
import { Arena } from './arenas';
import { cachedChunks, decodeTcachePerthread, TcachePerthread } from './decode';
import { RegionWalk } from './heap-walks';
import { AllocatorImage } from './image';
import { tcacheChunkSizes } from './layouts';
import { readBytes, readWord } from './memory-source';
import { revealPointer } from './safe-linking';
import { TcacheLayout } from './structs';
import { tidx2csize } from '../size-classes';
import { ChunkColumns, chunkSize, FREE_BIT } from '../walk/chunk';

export interface TcacheBinState {
  index: number;
  /** Chunks this bin holds: counts[i] (or, 2.42, tcache_count − num_slots[i]). */
  count: number;
  /** The cached chunks (chunk addresses, not user pointers), head first. */
  chunks: { address: bigint; size: number }[];
  reason?: string;
}

export interface ThreadCache {
  /** The chunk holding the struct; the struct itself (glibc's `tcache`) is 16 bytes on. */
  address: bigint;
  /** The arena whose memory holds it. */
  arena: bigint;
  /** `calling-thread`: its bin held the probe chunk freed just before the snapshot. */
  owner: 'calling-thread' | 'unknown';
  /** Why it is taken for a tcache. */
  evidence: string;
  /** Every bin, in index order. */
  bins: TcacheBinState[];
  /** The struct as stored. */
  struct: TcachePerthread;
  complete: boolean;
}

export interface TcacheSearch {
  tcaches: ThreadCache[];
  /**
   * Chunks of the struct's size whose bins are all empty, away from where a
   * thread's first malloc puts its struct: an idle thread's tcache and a
   * zeroed block of that size look alike, so they are listed, not decoded.
   */
  emptyLookalikes: bigint[];
  /**
   * Chunks of the struct's size that look like a tcache in use (every count
   * within mp_.tcache_count, every head 0 or inside an arena) but whose
   * lists do not decode and that nothing else marks as one: what a tcache
   * read in the middle of a change looks like, in a copy of a running process.
   */
  undecoded: { address: bigint; reason: string }[];
}

/**
 * The indices of a table's chunks sized from `least` to `most`. A loop of
 * its own: inside findTcaches it ran unoptimized at most walks
 * (--trace-deopt showed V8 dropping findTcaches' optimized code at a later,
 * colder line), and a small function's stays.
 */
function sizedBetween(table: ChunkColumns, least: number, most: number): number[] {
  const { count, offsets } = table;
  const found: number[] = [];
  for (let i = 0; i < count; i++) {
    const size = offsets[i + 1] - offsets[i];
    if (size >= least && size <= most) found.push(i);
  }
  return found;
}

interface Context {
  image: AllocatorImage;
  tcacheCount: bigint;
  tcacheBins: bigint;
  /** Every arena's memory: cached chunks may come from any arena. */
  memory: { start: bigint; end: bigint }[];
  /**
   * main_arena is not contiguous: glibc records nowhere what it took with
   * mmap, so a cached chunk may lie anywhere the copy holds, as a bin's may
   * (bin-walk.ts).
   */
  anywhere: boolean;
}

/**
 * Finds and decodes every tcache in the walked regions. `probe` is the user
 * pointer of a chunk the calling thread freed into its tcache just before
 * the snapshot, if any.
 */
export function findTcaches(
  image: AllocatorImage, arenas: readonly Arena[], walks: readonly RegionWalk[], par: { tcacheCount: bigint; tcacheBins: bigint }, probe?: bigint,
): TcacheSearch {
  const ctx: Context = {
    image, tcacheCount: par.tcacheCount, tcacheBins: par.tcacheBins, memory: arenas.flatMap((a) => a.memory), anywhere: arenas.some((a) => a.kind === 'main' && a.noncontiguous),
  };
  const candidates: { cache: ThreadCache; firstOfArena: boolean; where: string }[] = [];
  // The struct's chunk sizes, each with its layout: every chunk of every walk is compared with them.
  const bySize = new Map<number, TcacheLayout>();
  for (const t of image.layout.tcache) for (const n of tcacheChunkSizes(image.layout, t)) if (!bySize.has(n)) bySize.set(n, t);
  // Most chunks fall outside the sizes' span: one comparison each, not a search.
  const [least, most] = [Math.min(...bySize.keys()), Math.max(...bySize.keys())];
  for (const w of walks) {
    const { table } = w.walk;
    const { bits, offsets } = table;
    for (const i of sizedBetween(table, least, most)) {
      const size = chunkSize(table, i);
      const layout = bySize.get(size);
      if (layout === undefined || (bits[i] & FREE_BIT) !== 0 || i === w.walk.top) continue;
      const cache = decodeCache(ctx, w.start + BigInt(offsets[i]), w.arena, layout);
      if (cache === undefined) continue;
      const firstOfArena = i === 0 && (w.kind === 'heap' || w.heapInfo?.prev === 0n);
      candidates.push({ cache, firstOfArena, where: w.kind === 'heap' ? '[heap]' : `arena ${hex(w.arena)}'s first heap` });
    }
  }
  markKeys(ctx, candidates.map((c) => c.cache));
  const found: ThreadCache[] = [];
  const emptyLookalikes: bigint[] = [];
  const undecoded: TcacheSearch['undecoded'] = [];
  for (const { cache, firstOfArena, where } of candidates) {
    const full = firstFull(cache.bins);
    if (full !== undefined) {
      cache.evidence = `bin ${full.index} is a list of exactly its ${full.count} chunks of size ${hex(tidx2csize(full.index))}` +
        (image.layout.tcacheKey === 'absent-or-tcache-pointer' ? '' : ', each marked with the tcache key');
    } else if (firstOfArena) {
      cache.evidence = `the first chunk of ${where}, where a thread's ${image.layout.tcacheMadeAt === 'first-malloc' ? 'first malloc' : 'first free'} puts its tcache`;
    } else {
      if (allEmpty(cache.bins)) emptyLookalikes.push(cache.address);
      else if (plausible(ctx, cache)) undecoded.push({ address: cache.address, reason: firstReason(cache.bins) ?? '' });
      continue;
    }
    found.push(cache);
  }
  // A struct-sized chunk cached in another thread's tcache is free, not a tcache.
  const cached = new Set<bigint>();
  for (const t of found) for (const b of t.bins) for (const c of b.chunks) cached.add(c.address);
  const tcaches: ThreadCache[] = [];
  for (const t of found) {
    if (cached.has(t.address)) continue;
    if (probe !== undefined) for (const b of t.bins) if (b.chunks.length > 0 && b.chunks[0].address === probe - 16n) t.owner = 'calling-thread';
    t.complete = firstReason(t.bins) === undefined;
    tcaches.push(t);
  }
  return { tcaches, emptyLookalikes, undecoded };
}

// The helpers below run over every bin of every candidate, for each walk:
// loops, not callbacks, since a closure made per call is compiled again for
// each walk (V8 drops its optimized code with the closure).

/** The first bin that holds chunks and whose list decoded. */
function firstFull(bins: readonly TcacheBinState[]): TcacheBinState | undefined {
  for (const b of bins) if (b.count > 0 && own(b, 'reason') === undefined) return b;
  return undefined;
}

function allEmpty(bins: readonly TcacheBinState[]): boolean {
  for (const b of bins) if (b.count !== 0) return false;
  return true;
}

/** Why the first bin whose list did not decode stopped, or undefined. */
function firstReason(bins: readonly TcacheBinState[]): string | undefined {
  for (const b of bins) {
    const reason = own(b, 'reason');
    if (reason !== undefined) return reason as string;
  }
  return undefined;
}

/** Every count within mp_.tcache_count, every non-empty bin's head 0 or a 16-byte aligned address inside an arena. */
function plausible(ctx: Context, cache: ThreadCache): boolean {
  const { bins } = cache;
  for (let i = 0; i < bins.length; i++) {
    const b = bins[i];
    if (b.count < 0 || b.count > Number(ctx.tcacheCount)) return false;
    const head = cache.struct.entries[i];
    if (b.count !== 0 && head !== 0n && (head % 16n !== 0n || !inArenas(ctx, head - 16n, head + 16n))) return false;
  }
  return true;
}

function decodeCache(ctx: Context, chunk: bigint, arena: bigint, layout: TcacheLayout): ThreadCache | undefined {
  const bytes = readBytes(ctx.image.memory, chunk + 16n, layout.struct.size);
  if (typeof bytes === 'string') return undefined;
  const struct = decodeTcachePerthread(bytes, 0, layout, chunk + 16n);
  const bins: TcacheBinState[] = [];
  for (let index = 0; index < layout.bins; index++) bins.push(decodeBin(ctx, struct, layout, index));
  return { address: chunk, arena, owner: 'unknown', evidence: '', bins, struct, complete: false };
}

/** Whether [from, to) lies inside one arena's memory. */
function inArenas(ctx: Context, from: bigint, to: bigint): boolean {
  for (const r of ctx.memory) if (from >= r.start && to <= r.end) return true;
  return ctx.anywhere;
}

function decodeBin(ctx: Context, struct: TcachePerthread, layout: TcacheLayout, index: number): TcacheBinState {
  const count = cachedChunks(struct, index, ctx.tcacheCount);
  const bin: TcacheBinState = { index, count, chunks: [] };
  const stop = (reason: string): TcacheBinState => ({ ...bin, reason });
  if (count < 0 || count > Number(ctx.tcacheCount)) return stop(`its count ${count} is outside 0 … mp_.tcache_count (${ctx.tcacheCount})`);
  if (count > 0 && index >= Number(ctx.tcacheBins) && index < layout.smallBins) return stop(`it holds ${count} chunks, but mp_.tcache_bins is ${ctx.tcacheBins}`);
  const small = index < layout.smallBins;
  let entry = struct.entries[index];
  for (let step = 0; entry !== 0n; step++) {
    if (step === count) return stop(`the list goes on past its count of ${count} (next ${hex(entry)})`);
    const chunk = entry - 16n;
    if (entry % 16n !== 0n) return stop(`entry ${step} is ${hex(entry)}, not 16-byte aligned`);
    if (!inArenas(ctx, chunk, entry + 16n)) {
      // 2.43's free caches before it looks at IS_MMAPPED: with glibc.malloc.tcache_max past the mmap threshold, a large bin can hold an mmapped chunk.
      const mmapped = !small && ctx.image.layout.mmappedTail !== 0
        ? `: from glibc 2.43 the tcache can hold an mmapped chunk (where glibc.malloc.tcache_max reaches its size), whose memory this copy does not hold` : '';
      return stop(`entry ${step}, ${hex(entry)}, is outside every arena's memory${mmapped}`);
    }
    const sizeWord = readWord(ctx.image.memory, chunk + 8n);
    if (typeof sizeWord === 'string') return stop(sizeWord);
    const size = Number(sizeWord & ~7n);
    if (small ? size !== tidx2csize(index) : size <= tidx2csize(layout.smallBins - 1)) {
      return stop(`the chunk at ${hex(chunk)} has size ${hex(size)}, not the bin's ${small ? hex(tidx2csize(index)) : 'large sizes'}`);
    }
    const stored = readWord(ctx.image.memory, entry);
    if (typeof stored === 'string') return stop(stored);
    bin.chunks.push({ address: chunk, size });
    entry = ctx.image.layout.safeLinking ? revealPointer(stored, entry) : stored;
  }
  return bin.chunks.length === count ? bin : stop(`the list ends after ${bin.chunks.length} chunks, but its count is ${count}`);
}

/** tcache_entry.key of the cached chunk at `chunk`. */
const keyAt = (ctx: Context, chunk: bigint): bigint | string => readWord(ctx.image.memory, chunk + 24n);

/**
 * tcache_entry.key marks a cached chunk: the owning struct's address
 * (2.29–2.33) or tcache_key, one random word for the whole process (2.34
 * on). A cached chunk without the mark is reported in its bin.
 */
function markKeys(ctx: Context, caches: ThreadCache[]): void {
  const kind = ctx.image.layout.tcacheKey;
  if (kind === 'absent-or-tcache-pointer') return;
  let processKey: bigint | undefined;
  if (kind === 'random') {
    const votes = new Map<bigint, number>();
    for (const t of caches) for (const b of t.bins) for (const c of b.chunks) {
      const k = keyAt(ctx, c.address);
      if (typeof k !== 'string') votes.set(k, (votes.get(k) ?? 0) + 1);
    }
    processKey = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0];
  }
  for (const t of caches) {
    const wanted = kind === 'random' ? processKey : t.struct.address;
    for (const b of t.bins) {
      if (own(b, 'reason') !== undefined) continue;
      const bad = b.chunks.find((c) => keyAt(ctx, c.address) !== wanted);
      if (bad !== undefined) defineOwn(b, 'reason', `the cached chunk at ${hex(bad.address)} lacks the tcache key (${wanted === undefined ? 'none found' : hex(wanted)})`);
    }
  }
}
