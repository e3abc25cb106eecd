// The allocator's own state in this process: every arena, mp_ and
// global_max_fast, every bin, every thread's tcache, each chunk's place,
// and the totals mallinfo2() must agree with. Each call decodes one
// snapshot (taken now, or passed in so that several calls see one moment).
import {
  arenasResult, ArenasResult, binsResult, BinsResult, chunkPlacesResult, ChunkPlacesResult, Decoded, decodedTotalsResult,
  decodeSnapshot, DecodedTotalsResult, mallocParamsResult, MallocParamsResult, SnapshotInfo, tcachesResult, TcachesResult,
  VisResult, visResult,
} from './allocator/results';
import { readVisOptions, VisOptions } from './allocator/vis';
import { AllocatorSnapshot, AllocatorSnapshotOptions, takeAllocatorSnapshot } from './allocator/take-snapshot';
import { compareMallinfo, MallinfoMismatch } from './allocator/totals';
import { typeError } from './errors';
import { Mallinfo } from './stats';
import { describe } from './validate';

export type { ArenasResult, BinsResult, ChunkPlacesResult, MallocParamsResult, SnapshotInfo, TcachesResult, VisOptions, VisResult };

export interface AllocatorTotalsResult extends DecodedTotalsResult {
  /** mallinfo2() taken right after the copy, in the same native call. */
  mallinfo: Mallinfo;
  /** Fields where they differ. Exact only while no other thread used malloc (`snapshot.consistent`). */
  mismatches: MallinfoMismatch[];
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
const decoded = new WeakMap<AllocatorSnapshot, Decoded | undefined>();

function stateOf(snapshot: AllocatorSnapshot | undefined): { s: AllocatorSnapshot; d: Decoded } {
  if (snapshot !== undefined && !decoded.has(snapshot)) {
    throw typeError(`snapshot must be what allocatorSnapshot() returned, got ${describe(snapshot)}`);
  }
  const s = snapshot ?? takeAllocatorSnapshot();
  let d = decoded.get(s);
  if (d === undefined) {
    d = decodeSnapshot(s);
    decoded.set(s, d);
  }
  return { s, d };
}

/** Every arena: main_arena, then each as `next` leads, with its heaps, top, flags and counters. */
export function arenas(snapshot?: AllocatorSnapshot): ArenasResult {
  return arenasResult(stateOf(snapshot).d);
}

/**
 * Every field of mp_ with its meaning, and global_max_fast, read at the
 * offset from main_arena measured once per libc file in a child process.
 */
export function mallocParams(snapshot?: AllocatorSnapshot): MallocParamsResult {
  const { s, d } = stateOf(snapshot);
  return mallocParamsResult(s, d);
}

/** Each arena's fastbins, unsorted, small and large bins, every list followed and checked, and its binmap. */
export function bins(snapshot?: AllocatorSnapshot): BinsResult {
  return binsResult(stateOf(snapshot).d);
}

/** Every thread's tcache found in the arenas' memory; the calling thread's is marked by the snapshot's probe. */
export function tcaches(snapshot?: AllocatorSnapshot): TcachesResult {
  return tcachesResult(stateOf(snapshot).d);
}

/** Every chunk of every arena's memory with the place it sits in, and the totals per place. */
export function chunkPlaces(snapshot?: AllocatorSnapshot): ChunkPlacesResult {
  return chunkPlacesResult(stateOf(snapshot).d);
}

/** The decode's totals against mallinfo2() of the same native call, field by field. */
export function allocatorTotals(snapshot?: AllocatorSnapshot): AllocatorTotalsResult {
  const { s, d } = stateOf(snapshot);
  const totals = decodedTotalsResult(d);
  return { ...totals, mallinfo: s.mallinfo, mismatches: compareMallinfo(totals.total, s.mallinfo) };
}

/**
 * pwndbg's vis_heap_chunks: `options.count` chunks (default 10, at most
 * 1000) from the one holding `options.address` (default: the first of
 * main_arena's [heap]), each with its raw 16-byte lines, header, links and
 * place. Throws ERR_NOT_IN_HEAP when no chunk of any arena holds the address.
 */
export function vis(options?: VisOptions, snapshot?: AllocatorSnapshot): VisResult {
  const read = readVisOptions(options);
  const { s, d } = stateOf(snapshot);
  return visResult(d, s.image, read);
}
