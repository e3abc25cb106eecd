// The allocator's own state in this process: every arena, mp_ and
// global_max_fast, every bin, every thread's tcache, each chunk's place,
// and the totals mallinfo2() must agree with. Each call decodes one
// snapshot (taken now, or passed in so that several calls see one moment).
import { Arena } from './allocator/arenas';
import { ArenaBins } from './allocator/bins';
import { maxFastOffset, readGlobalMaxFast } from './allocator/max-fast';
import { MallocParams } from './allocator/params';
import { PlaceKind, RegionPlaces, Placement, placementProblems } from './allocator/places';
import { AllocatorState, decodeAllocator, publicArenas } from './allocator/state';
import { AllocatorSnapshot, AllocatorSnapshotOptions, takeAllocatorSnapshot } from './allocator/take-snapshot';
import { ThreadCache } from './allocator/tcaches';
import { ArenaTotals, compareMallinfo, MallinfoMismatch, MallinfoTotals } from './allocator/totals';
import { HeapscopeError, typeError } from './errors';
import { Mallinfo } from './stats';
import { describe } from './validate';

/** How the snapshot behind a result was taken. */
export interface SnapshotInfo {
  attempts: number;
  consistent: boolean;
  reason?: string;
}

export interface ArenasResult {
  arenas: Arena[];
  /** main_arena's `next` list led back to it. */
  complete: boolean;
  reason?: string;
  snapshot: SnapshotInfo;
}

export interface MallocParamsResult extends MallocParams {
  snapshot: SnapshotInfo;
}

export interface BinsResult {
  /** Per arena, in the order of the arena list. */
  arenas: ArenaBins[];
  snapshot: SnapshotInfo;
}

export interface TcachesResult {
  tcaches: ThreadCache[];
  emptyLookalikes: bigint[];
  snapshot: SnapshotInfo;
}

export interface ChunkPlacesResult {
  regions: RegionPlaces[];
  strays: Placement['strays'];
  /** Per arena: chunks and bytes in each place. */
  totals: { arena: bigint; places: Partial<Record<PlaceKind, { count: number; bytes: number }>> }[];
  /** Each inconsistency between the walk and the lists, as a sentence. */
  problems: string[];
  snapshot: SnapshotInfo;
}

export interface AllocatorTotalsResult {
  perArena: ArenaTotals[];
  /** The decode's totals, summed as int_mallinfo sums them. */
  total: MallinfoTotals;
  /** mallinfo2() taken right after the copy, in the same native call. */
  mallinfo: Mallinfo;
  /** Fields where they differ. Exact only while no other thread used malloc (`snapshot.consistent`). */
  mismatches: MallinfoMismatch[];
  /** Why the decode's totals may be short. */
  incomplete: string[];
  snapshot: SnapshotInfo;
}

export type { AllocatorSnapshot, AllocatorSnapshotOptions };

/**
 * Copies libc's data, [heap] and every thread-arena heap inside one native
 * call, retaken while another thread changes malloc's state (see
 * AllocatorSnapshotOptions). Pass it to the calls below to decode one moment.
 */
export function allocatorSnapshot(options?: AllocatorSnapshotOptions): AllocatorSnapshot {
  const s = takeAllocatorSnapshot(options);
  decoded.set(s, undefined);
  return s;
}

/** Every snapshot allocatorSnapshot() made (a WeakMap lookup runs no Proxy trap), with its decode once made. */
const decoded = new WeakMap<AllocatorSnapshot, AllocatorState | undefined>();

function stateOf(snapshot: AllocatorSnapshot | undefined): { s: AllocatorSnapshot; state: AllocatorState; info: SnapshotInfo } {
  if (snapshot !== undefined && !decoded.has(snapshot)) {
    throw typeError(`snapshot must be what allocatorSnapshot() returned, got ${describe(snapshot)}`);
  }
  const s = snapshot ?? takeAllocatorSnapshot();
  let state = decoded.get(s);
  if (state === undefined) {
    try {
      state = decodeAllocator(s.image, s.probe === undefined ? {} : { probe: s.probe });
    } catch (error) {
      if (error instanceof HeapscopeError && !s.consistent) error.message += ` (the snapshot was torn after ${s.attempts} attempts: ${s.reason})`;
      throw error;
    }
    decoded.set(s, state);
  }
  return { s, state, info: { attempts: s.attempts, consistent: s.consistent, ...(s.reason === undefined ? {} : { reason: s.reason }) } };
}

/** Every arena: main_arena, then each as `next` leads, with its heaps, top, flags and counters. */
export function arenas(snapshot?: AllocatorSnapshot): ArenasResult {
  const { state, info } = stateOf(snapshot);
  return { ...publicArenas(state.arenas), snapshot: info };
}

/**
 * Every field of mp_ with its meaning, and global_max_fast, read at the
 * offset from main_arena measured once per libc file in a child process.
 */
export function mallocParams(snapshot?: AllocatorSnapshot): MallocParamsResult {
  const { s, state, info } = stateOf(snapshot);
  const globalMaxFast = readGlobalMaxFast(s.image, state.mainArena, maxFastOffset(s.libc), s.libc.key);
  return { ...state.params, globalMaxFast, snapshot: info };
}

/** Each arena's fastbins, unsorted, small and large bins, every list followed and checked, and its binmap. */
export function bins(snapshot?: AllocatorSnapshot): BinsResult {
  const { state, info } = stateOf(snapshot);
  return { arenas: state.bins, snapshot: info };
}

/** Every thread's tcache found in the arenas' memory; the calling thread's is marked by the snapshot's probe. */
export function tcaches(snapshot?: AllocatorSnapshot): TcachesResult {
  const { state, info } = stateOf(snapshot);
  return { ...state.tcaches, snapshot: info };
}

/** Every chunk of every arena's memory with the place it sits in, and the totals per place. */
export function chunkPlaces(snapshot?: AllocatorSnapshot): ChunkPlacesResult {
  const { state, info } = stateOf(snapshot);
  const { regions, strays } = state.placement;
  const totals = state.arenas.arenas.map((a) => {
    const places: ChunkPlacesResult['totals'][number]['places'] = {};
    for (const r of regions) {
      if (r.arena !== a.address) continue;
      for (const c of r.chunks) {
        const t = (places[c.place] ??= { count: 0, bytes: 0 });
        t.count++;
        t.bytes += c.size;
      }
    }
    return { arena: a.address, places };
  });
  return { regions, strays, totals, problems: placementProblems(state.placement), snapshot: info };
}

/** The decode's totals against mallinfo2() of the same native call, field by field. */
export function allocatorTotals(snapshot?: AllocatorSnapshot): AllocatorTotalsResult {
  const { s, state, info } = stateOf(snapshot);
  const { perArena, total, incomplete } = state.totals;
  return { perArena, total, mallinfo: s.mallinfo, mismatches: compareMallinfo(total, s.mallinfo), incomplete, snapshot: info };
}
