// main_arena's heap: the [heap] region from its start to the program break.
import { own } from '../validate';
import { StoredWalk, walkSnapshotStored } from './chunk';

/**
 * The offset in [heap] of main_arena's first chunk. sysmalloc's first
 * sbrk'd chunk starts at the first address from mp_.sbrk_base on whose user
 * pointer is 16-byte aligned: [heap]'s start, unless the program moved the
 * break itself before malloc's first sbrk (then sbrk_base lies further in).
 */
export function mainFirstChunk(heap: { start: bigint; end: bigint }, sbrkBase?: bigint): number {
  const from = sbrkBase !== undefined && sbrkBase > heap.start && sbrkBase < heap.end ? sbrkBase : heap.start;
  return Number(from - heap.start + ((16n - (from % 16n)) % 16n));
}

/**
 * Walks main_arena's [heap] from a snapshot of [start, break), from its
 * first chunk (mainFirstChunk); the top chunk ends at the break.
 */
export function walkMainHeap(snapshot: Uint8Array, start: bigint, programBreak: bigint, sbrkBase?: bigint): StoredWalk {
  const first = mainFirstChunk({ start, end: programBreak }, sbrkBase);
  const wanted = programBreak - start;
  const end = wanted < 0n || wanted > BigInt(snapshot.length) ? snapshot.length : Number(wanted);
  const walk = walkSnapshotStored(snapshot, start, { start: first, end, mainArena: true });
  if (end !== Number(wanted) && own(walk, 'reason') === undefined) {
    return { ...walk, ending: 'stopped', reason: `the program break (${programBreak}) lies outside the ${snapshot.length} bytes read`, top: -1 };
  }
  return walk;
}
