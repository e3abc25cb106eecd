// A copy of main_arena's [heap] for walkSnapshot alone: its bytes, and
// where its first chunk and its top's end lie.
import { liveMallocPar } from '../allocator/live-par';
import { HeapscopeError, rangeError } from '../errors';
import { bytes, shortBytes } from '../format';
import { maps, untouchedReadsZero } from '../maps';
import { MAX_PLAN_READ, runPlan } from '../plan';
import { programBreak } from '../stats';
import { toIndex } from '../validate';
import { mainFirstChunk } from './main-arena';

/** A copy of main_arena's [heap] and where its chunks lie in it: `walkSnapshot(s.bytes, s.base, s)` walks it. */
export interface MainHeapSnapshot {
  bytes: Buffer;
  /** The address of bytes[0]: the [heap] region's start. */
  base: bigint;
  /** Offset of the first chunk: past bytes before mp_.sbrk_base (the program's own, where it moved the break before malloc did). */
  start: number;
  /** Offset of the program break: where the top chunk ends. */
  end: number;
  mainArena: true;
}

/**
 * Copies [heap] up to the program break in one native call (the break read
 * just before and after the copy, retried while it moves). For timing
 * walkSnapshot alone, e.g. in a benchmark. The first chunk is found from
 * mp_.sbrk_base as glibc has it now (mainFirstChunk): throws
 * ERR_ALLOCATOR_NOT_FOUND or ERR_UNKNOWN_GLIBC_LAYOUT where mp_ cannot be read.
 */
export function mainHeapSnapshot(attempts = 5): MainHeapSnapshot {
  const tries = toIndex(attempts, 'attempts', 100);
  if (tries < 1) throw rangeError('attempts must be at least 1');
  const heap = maps().find((r) => r.kind === 'heap');
  if (heap === undefined) throw new HeapscopeError('ERR_READ_FAILED', 'this process has no [heap] region');
  const start = mainFirstChunk(heap, liveMallocPar().sbrkBase);
  let end = programBreak();
  for (let attempt = 1; ; attempt++) {
    if (end - heap.start > MAX_PLAN_READ) {
      throw new HeapscopeError('ERR_READ_FAILED', `[heap] is ${bytes(end - heap.start)}; mainHeapSnapshot copies at most ${shortBytes(MAX_PLAN_READ)}, the most one Buffer holds in Node 20`);
    }
    const read = { op: 'read' as const, address: heap.start, length: end - heap.start, anonymous: untouchedReadsZero(heap) };
    const { steps } = runPlan([{ op: 'break' }, read, { op: 'break' }]);
    const before = steps[0].programBreak!;
    if (steps[1].status === 'ok' && before === end && steps[2].programBreak === end) {
      return { bytes: steps[1].bytes!, base: heap.start, start, end: Number(end - heap.start), mainArena: true };
    }
    if (attempt >= tries) throw new HeapscopeError('ERR_READ_FAILED', `the program break kept moving while [heap] was copied (${tries} attempts)`);
    end = steps[2].programBreak!;
  }
}
