// Thread-arena heaps: a 64 MiB-aligned mapping that starts with glibc's
// heap_info (malloc/arena.c) and, in an arena's first heap, its malloc_state.
//
//   struct _heap_info { mstate ar_ptr; struct _heap_info *prev; size_t size;
//     size_t mprotect_size; size_t pagesize /* 2.35+ */; char pad[]; }
//
// The pad makes sizeof(heap_info) + 16 a multiple of 16: 32 bytes before
// glibc 2.35, 48 from 2.35 on. An older heap's chunks start right after it;
// the first heap holds malloc_state there (2200 bytes on x86_64 since 2.27:
// mutex, flags and have_fastchunks padded to 16, fastbinsY[10], top,
// last_remainder, bins[254], binmap[4] as unsigned int, next, next_free,
// attached_threads, system_mem, max_system_mem) and its first chunk at the
// next address whose user pointer (chunk + 16) is 16-byte aligned.
import { hex } from '../format';
import { glibcVersionNumbers } from '../stats';
import { SnapshotWalk, walkSnapshot } from './chunk';

export interface HeapInfo {
  /** The heap_info's own address: the heap's start. */
  address: bigint;
  /** The arena (malloc_state) this heap belongs to. */
  arPtr: bigint;
  /** The arena's previous heap, 0 for its first. */
  prev: bigint;
  /** Bytes in use by the heap, from its start (heap_info included). */
  size: number;
  /** Bytes made read-write so far. */
  mprotectSize: number;
  /** glibc ≥ 2.35: the page size the heap was made with. */
  pagesize?: number;
  /** The arena's malloc_state lies in this heap: its first. */
  first: boolean;
}

/** Offset of `top` in malloc_state (glibc ≥ 2.27): three ints padded to 16, then fastbinsY[10]. */
export const TOP_OFFSET = 16 + 10 * 8;
/** sizeof(struct malloc_state) on x86_64, glibc ≥ 2.27. */
export const MALLOC_STATE_SIZE = 2200;

/** sizeof(heap_info): 48 with the pagesize field (glibc ≥ 2.35), 32 before. */
export function heapInfoSize(): number {
  const { major, minor } = glibcVersionNumbers();
  return major > 2 || (major === 2 && minor >= 35) ? 48 : 32;
}

function u64(snapshot: Uint8Array, at: number): bigint {
  return Buffer.from(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength).readBigUInt64LE(at);
}

/** Reads heap_info from the first bytes of a heap's snapshot. */
export function readHeapInfo(snapshot: Uint8Array, start: bigint, infoSize = heapInfoSize()): HeapInfo {
  const arPtr = u64(snapshot, 0);
  const info: HeapInfo = {
    address: start,
    arPtr,
    prev: u64(snapshot, 8),
    size: Number(u64(snapshot, 16)),
    mprotectSize: Number(u64(snapshot, 24)),
    first: arPtr === start + BigInt(infoSize),
  };
  if (infoSize === 48) info.pagesize = Number(u64(snapshot, 32));
  return info;
}

/** The offset of a heap's first chunk from its start. */
export function firstChunkOffset(info: HeapInfo, infoSize = heapInfoSize()): number {
  if (!info.first) return infoSize;
  const after = infoSize + MALLOC_STATE_SIZE;
  const misalign = (after + 16) % 16;
  return misalign === 0 ? after : after + 16 - misalign;
}

/** The arena's top chunk, read from malloc_state inside this snapshot (the arena's first heap). */
export function topFromState(snapshot: Uint8Array, info: HeapInfo): bigint | undefined {
  if (!info.first) return undefined;
  const at = Number(info.arPtr - info.address) + TOP_OFFSET;
  return at + 8 <= snapshot.length ? u64(snapshot, at) : undefined;
}

/**
 * Walks one thread-arena heap from its snapshot. `top` is its arena's top
 * chunk (from the arena's first heap); a heap that does not hold it is an
 * older heap and ends in a fencepost.
 */
export function walkArenaHeap(snapshot: Uint8Array, info: HeapInfo, top: bigint | undefined): { walk: SnapshotWalk; start: number; reason?: string } {
  const start = firstChunkOffset(info);
  const end = info.size;
  const checks = heapInfoProblem(snapshot, info, start);
  if (checks !== undefined) {
    return { walk: walkSnapshot(snapshot, info.address, { start: 0, end: 0 }), start, reason: checks };
  }
  const holdsTop = top !== undefined && top >= info.address + BigInt(start) && top < info.address + BigInt(end);
  const walk = walkSnapshot(snapshot, info.address, {
    start, end, fenceposts: !holdsTop, ...(holdsTop ? { top } : {}),
  });
  if (top === undefined && walk.ending === 'top') {
    return { walk, start, reason: `the arena's malloc_state (at ${hex(info.arPtr)}) was not in the snapshot, so the top chunk is unconfirmed` };
  }
  return { walk, start, ...(walk.reason === undefined ? {} : { reason: walk.reason }) };
}

function heapInfoProblem(snapshot: Uint8Array, info: HeapInfo, start: number): string | undefined {
  if (info.size < start + 32 || info.size > snapshot.length) {
    return `heap_info at ${hex(info.address)} gives size ${info.size}, outside ${start + 32}..${snapshot.length} (the bytes read)`;
  }
  if (info.mprotectSize < info.size) {
    return `heap_info at ${hex(info.address)} gives mprotect_size ${info.mprotectSize} below its size ${info.size}`;
  }
  return undefined;
}
