// main_arena's heap: the [heap] region from its start to the program break.
import { HeapscopeError, rangeError } from '../errors';
import { bytes, shortBytes } from '../format';
import { maps, untouchedReadsZero } from '../maps';
import { MAX_PLAN_READ, runPlan } from '../plan';
import { programBreak } from '../stats';
import { own, toIndex } from '../validate';
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

/** A copy of main_arena's [heap] and where its chunks lie in it: `walkSnapshot(s.bytes, s.base, s)` walks it. */
export interface MainHeapSnapshot {
  bytes: Buffer;
  /** The address of bytes[0]: the [heap] region's start. */
  base: bigint;
  /** Offset of the first chunk. */
  start: number;
  /** Offset of the program break: where the top chunk ends. */
  end: number;
  mainArena: true;
}

/**
 * Copies [heap] up to the program break in one native call (the break read
 * just before and after the copy, retried while it moves). For timing
 * walkSnapshot alone, e.g. in a benchmark.
 */
export function mainHeapSnapshot(attempts = 5): MainHeapSnapshot {
  const tries = toIndex(attempts, 'attempts', 100);
  if (tries < 1) throw rangeError('attempts must be at least 1');
  const heap = maps().find((r) => r.kind === 'heap');
  if (heap === undefined) throw new HeapscopeError('ERR_READ_FAILED', 'this process has no [heap] region');
  let end = programBreak();
  for (let attempt = 1; ; attempt++) {
    if (end - heap.start > MAX_PLAN_READ) {
      throw new HeapscopeError('ERR_READ_FAILED', `[heap] is ${bytes(end - heap.start)}; mainHeapSnapshot copies at most ${shortBytes(MAX_PLAN_READ)}, the most one Buffer holds in Node 20`);
    }
    const read = { op: 'read' as const, address: heap.start, length: end - heap.start, anonymous: untouchedReadsZero(heap) };
    const { steps } = runPlan([{ op: 'break' }, read, { op: 'break' }]);
    const before = steps[0].programBreak!;
    if (steps[1].status === 'ok' && before === end && steps[2].programBreak === end) {
      return { bytes: steps[1].bytes!, base: heap.start, start: Number((16n - (heap.start % 16n)) % 16n), end: Number(end - heap.start), mainArena: true };
    }
    if (attempt >= tries) throw new HeapscopeError('ERR_READ_FAILED', `the program break kept moving while [heap] was copied (${tries} attempts)`);
    end = steps[2].programBreak!;
  }
}
