// Decoders of malloc's structs from copied bytes: pure functions of the
// bytes, where they were copied from and the layout. Pointers and size_t
// fields are bigints (as stored: a corrupt value stays visible), int fields
// numbers. Each takes the struct's own address, which glibc's self-referring
// values (bin headers, safe-linked links) are computed from.
import { HeapscopeError } from '../errors';
import { defineOwn } from '../validate';
import { GlibcLayout } from './layouts';
import { revealPointer } from './safe-linking';
import { checkSpan, readC } from './snapshot';
import { offsetOf, StructLayout } from './struct-layout';
import { TcacheLayout } from './structs';

export type FieldValue = bigint | number | bigint[] | number[];

/** Every field of `layout` at `offset`, by glibc's names; arrays as arrays. */
export function decodeFields(bytes: Uint8Array, offset: number, layout: StructLayout): Record<string, FieldValue> {
  checkSpan(bytes, offset, layout.size, layout.name);
  const out: Record<string, FieldValue> = {};
  for (const f of layout.fields) {
    const step = f.count === 0 ? 0 : f.size / f.count;
    const at = offset + f.offset;
    if (f.count === 1) {
      defineOwn(out, f.name, readC(bytes, at, f.type));
    } else {
      // A loop, not Array.from's callback: a closure made per call is compiled again for each walk.
      const values: FieldValue[] = [];
      for (let i = 0; i < f.count; i++) values.push(readC(bytes, at + i * step, f.type));
      defineOwn(out, f.name, values);
    }
  }
  return out;
}

/** One of an arena's regular bins: its header's fd and bk. */
export interface ArenaBin {
  /** 1 is the unsorted bin, 2–63 small bins, 64–127 large bins. */
  index: number;
  /** bin_at(av, index): where a chunk header would sit so that its fd and bk are the bin's. */
  address: bigint;
  fd: bigint;
  bk: bigint;
}

export interface MallocState {
  address: bigint;
  mutex: number;
  flags: number;
  /** Absent from 2.43, which has no fastbins. */
  haveFastchunks?: number;
  /** fastbinsY: the head chunk of each fastbin (heads are not safe-linked); empty from 2.43. */
  fastbins: bigint[];
  top: bigint;
  lastRemainder: bigint;
  /** Bins 1 to 127, from bins[0..253]. */
  bins: ArenaBin[];
  binmap: number[];
  next: bigint;
  nextFree: bigint;
  attachedThreads: bigint;
  systemMem: bigint;
  maxSystemMem: bigint;
}

/** offsetof(struct malloc_chunk, fd): bin_at steps back over prev_size and size. */
const CHUNK_FD = 16n;

/** bin_at(av, i) for an arena at `arena`. */
export function binAddress(layout: GlibcLayout, arena: bigint, index: number): bigint {
  return arena + BigInt(offsetOf(layout.mallocState, 'bins') + (index - 1) * 16) - CHUNK_FD;
}

/**
 * initial_top(av) = unsorted_chunks(av) = bin_at(av, 1): where top points
 * before the arena has any memory. It comes out at &av->top.
 */
export function initialTop(layout: GlibcLayout, arena: bigint): bigint {
  return binAddress(layout, arena, 1);
}

/** struct malloc_state at `bytes[offset]`, copied from `address`. */
export function decodeMallocState(bytes: Uint8Array, offset: number, layout: GlibcLayout, address: bigint): MallocState {
  const f = decodeFields(bytes, offset, layout.mallocState);
  const raw = f.bins as bigint[];
  const bins: ArenaBin[] = [];
  for (let index = 1; index * 2 <= raw.length; index++) {
    bins.push({ index, address: binAddress(layout, address, index), fd: raw[2 * index - 2], bk: raw[2 * index - 1] });
  }
  const state: MallocState = {
    address,
    mutex: f.mutex as number,
    flags: f.flags as number,
    fastbins: (f.fastbinsY ?? []) as bigint[],
    top: f.top as bigint,
    lastRemainder: f.last_remainder as bigint,
    bins,
    binmap: f.binmap as number[],
    next: f.next as bigint,
    nextFree: f.next_free as bigint,
    attachedThreads: f.attached_threads as bigint,
    systemMem: f.system_mem as bigint,
    maxSystemMem: f.max_system_mem as bigint,
  };
  if ('have_fastchunks' in f) state.haveFastchunks = f.have_fastchunks as number;
  return state;
}

export interface MallocPar {
  address: bigint;
  trimThreshold: bigint;
  topPad: bigint;
  mmapThreshold: bigint;
  arenaTest: bigint;
  arenaMax: bigint;
  /** 2.43 on: enum malloc_thp_mode_t, the kernel's transparent huge page mode as malloc found it. */
  thpMode?: number;
  /** 2.35 on. */
  thpPagesize?: bigint;
  /** 2.35 on. */
  hpPagesize?: bigint;
  /** 2.35 on. */
  hpFlags?: number;
  nMmaps: number;
  nMmapsMax: number;
  maxNMmaps: number;
  noDynThreshold: number;
  mmappedMem: bigint;
  maxMmappedMem: bigint;
  sbrkBase: bigint;
  /** tcache_bins; tcache_small_bins from 2.42 (its large bins are not counted). */
  tcacheBins: bigint;
  tcacheMaxBytes: bigint;
  tcacheCount: bigint;
  tcacheUnsortedLimit: bigint;
}

/** struct malloc_par (mp_) at `bytes[offset]`, copied from `address`. */
export function decodeMallocPar(bytes: Uint8Array, offset: number, layout: GlibcLayout, address: bigint): MallocPar {
  const f = decodeFields(bytes, offset, layout.mallocPar);
  const par: MallocPar = {
    address,
    trimThreshold: f.trim_threshold as bigint,
    topPad: f.top_pad as bigint,
    mmapThreshold: f.mmap_threshold as bigint,
    arenaTest: f.arena_test as bigint,
    arenaMax: f.arena_max as bigint,
    nMmaps: f.n_mmaps as number,
    nMmapsMax: f.n_mmaps_max as number,
    maxNMmaps: f.max_n_mmaps as number,
    noDynThreshold: f.no_dyn_threshold as number,
    mmappedMem: f.mmapped_mem as bigint,
    maxMmappedMem: f.max_mmapped_mem as bigint,
    sbrkBase: f.sbrk_base as bigint,
    tcacheBins: (f.tcache_bins ?? f.tcache_small_bins) as bigint,
    tcacheMaxBytes: f.tcache_max_bytes as bigint,
    tcacheCount: f.tcache_count as bigint,
    tcacheUnsortedLimit: f.tcache_unsorted_limit as bigint,
  };
  if ('hp_flags' in f) {
    par.thpPagesize = f.thp_pagesize as bigint;
    par.hpPagesize = f.hp_pagesize as bigint;
    par.hpFlags = f.hp_flags as number;
  }
  if ('thp_mode' in f) par.thpMode = f.thp_mode as number;
  return par;
}

export interface HeapInfo {
  address: bigint;
  /** The arena this heap belongs to. */
  arPtr: bigint;
  /** The arena's previous heap, 0 for its first. */
  prev: bigint;
  size: bigint;
  mprotectSize: bigint;
  /** 2.35 on: the page size the heap was mapped with (huge pages or not). */
  pagesize?: bigint;
}

/** heap_info at the start of a thread arena's heap. */
export function decodeHeapInfo(bytes: Uint8Array, offset: number, layout: GlibcLayout, address: bigint): HeapInfo {
  const f = decodeFields(bytes, offset, layout.heapInfo);
  const info: HeapInfo = {
    address, arPtr: f.ar_ptr as bigint, prev: f.prev as bigint, size: f.size as bigint, mprotectSize: f.mprotect_size as bigint,
  };
  if ('pagesize' in f) info.pagesize = f.pagesize as bigint;
  return info;
}

export interface TcachePerthread {
  address: bigint;
  layout: TcacheLayout;
  /** counts[] or (2.42) num_slots[] as stored: see layout.counts for the meaning. */
  counts: number[];
  /** The head of each bin: a user pointer, stored plain. */
  entries: bigint[];
}

/**
 * tcache_perthread_struct at `bytes[offset]` (the user memory of its chunk),
 * copied from `address`. For 2.28 and 2.29 pass the TcacheLayout that
 * tcacheLayoutFor picked from the chunk's size.
 */
export function decodeTcachePerthread(
  bytes: Uint8Array, offset: number, layout: GlibcLayout | TcacheLayout, address: bigint,
): TcachePerthread {
  const t = 'struct' in layout ? layout : onlyTcache(layout);
  const f = decodeFields(bytes, offset, t.struct);
  return { address, layout: t, counts: f[t.countsField] as number[], entries: f.entries as bigint[] };
}

/** The chunks bin `index` holds: counts[i], or tcache_count − num_slots[i] (2.42). */
export function cachedChunks(tcache: TcachePerthread, index: number, tcacheCount: bigint): number {
  const stored = tcache.counts[index];
  return tcache.layout.counts === 'entries' ? stored : Number(tcacheCount) - stored;
}

export interface TcacheEntry {
  /** The user pointer of the cached chunk. */
  address: bigint;
  /** The next entry, revealed when the version safe-links. */
  next: bigint;
  /** `next` as stored. */
  storedNext: bigint;
  /** The key word, where the version has one (see GlibcLayout.tcacheKey). */
  key?: bigint;
}

/** A cached chunk's tcache_entry (its first user words) at `bytes[offset]`, copied from `address`. */
export function decodeTcacheEntry(bytes: Uint8Array, offset: number, layout: GlibcLayout, address: bigint): TcacheEntry {
  const f = decodeFields(bytes, offset, layout.tcacheEntry);
  const storedNext = f.next as bigint;
  const entry: TcacheEntry = { address, next: layout.safeLinking ? revealPointer(storedNext, address) : storedNext, storedNext };
  if ('key' in f) entry.key = f.key as bigint;
  return entry;
}

function onlyTcache(layout: GlibcLayout): TcacheLayout {
  if (layout.tcache.length !== 1) {
    throw new HeapscopeError('ERR_UNKNOWN_GLIBC_LAYOUT',
      `glibc ${layout.version} has ${layout.tcache.length} tcache_perthread_struct layouts: pick one by the chunk's size with tcacheLayoutFor`);
  }
  return layout.tcache[0];
}

