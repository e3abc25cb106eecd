// The arena list: main_arena.next → … → main_arena, as far as the copies go.
import { hex } from '../format';
import { GlibcLayout } from './layouts';
import { locateIn, readC, Snapshot } from './snapshot';
import { offsetOf } from './struct-layout';

export interface ArenaChain {
  /** main_arena first, then each arena as `next` leads, while the copies hold them. */
  arenas: bigint[];
  /** The list came back to main_arena. */
  complete: boolean;
  /** The list reached an arena the copies do not hold (else it looped without main_arena). */
  leftCopies?: boolean;
  /** Why it was not followed around, when it was not. */
  reason?: string;
}

/**
 * Follows `next` from the arena at `main` through `snapshots` (libc's data
 * plus copies of thread arenas, each starting at least one malloc_state in).
 */
export function followArenas(main: bigint, snapshots: readonly Snapshot[], layout: GlibcLayout): ArenaChain {
  const nextAt = BigInt(offsetOf(layout.mallocState, 'next'));
  const arenas = [main];
  const seen = new Set<bigint>(arenas);
  for (let at = main; ;) {
    const copy = locateIn(snapshots, at + nextAt, 8);
    if (copy === undefined) return { arenas, complete: false, leftCopies: true, reason: `arena ${hex(at)} is not in the copies` };
    const next = readC(copy.bytes, copy.offset, 'pointer');
    if (next === main) return { arenas, complete: true };
    if (seen.has(next)) return { arenas, complete: false, reason: `arena ${hex(at)} leads back to ${hex(next)}, not to main_arena` };
    seen.add(next);
    arenas.push(next);
    at = next;
  }
}
