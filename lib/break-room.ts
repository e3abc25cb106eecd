// How far the program break can grow. Node's own binary is not
// position-independent, so [heap] sits in the low 2 GiB, where V8 also tries
// to place its code range (near the builtins it calls). When V8's choice lands
// just above the heap, brk() fails once the heap reaches it and glibc grows
// main_arena with mmap instead (non-contiguous): the break stops moving, the
// top chunk no longer ends at it, and nothing is ever trimmed.
import { USER_END } from './exact';
import { hex, shortBytes } from './format';
import { MemoryRegion, parseMaps } from './maps';
import { runPlan } from './plan';
import { arenas } from './allocator-state';

export interface BreakRoom {
  programBreak: bigint;
  /** Bytes from the break to the next mapping above it. */
  room: bigint;
  /** That mapping; undefined when nothing is mapped above the break. */
  next?: MemoryRegion;
}

/**
 * The room above the break now. The map and the break are read in one plan,
 * into memory from mmap: reading /proc with fs would leave a Buffer from
 * malloc behind, freed into main_arena whenever it is collected, in the
 * middle of whatever the caller measures next.
 */
export function breakRoom(): BreakRoom {
  const [m, b] = runPlan([{ op: 'maps' }, { op: 'break' }]).steps;
  const at = b.programBreak!;
  const next = parseMaps(m.maps!).find((r) => r.start >= at);
  return { programBreak: at, room: (next?.start ?? USER_END) - at, next };
}

/** One sentence naming the room and what bounds it. */
export function breakRoomText(r: BreakRoom): string {
  const room = shortBytes(r.room);
  if (r.next === undefined) return `the program break ${hex(r.programBreak)} has ${room} of room, up to the end of user space`;
  const what = r.next.path === '' ? 'an anonymous mapping' : r.next.path;
  return `the program break ${hex(r.programBreak)} can grow only ${room}, up to ${what} at ${hex(r.next.start)}–${hex(r.next.end)} (${r.next.perms})`;
}

/**
 * Measured when an experiment saw the break stand still: main_arena's
 * NONCONTIGUOUS_BIT (read from glibc's own state) says whether brk() was
 * refused. A sentence naming the cause, or undefined when the arena is
 * contiguous (then free memory malloc held explains it).
 */
export function blockedBreak(): string | undefined {
  const main = arenas().arenas.find((a) => a.kind === 'main');
  if (main === undefined || !main.noncontiguous) return undefined;
  return `brk() could not grow the heap (${breakRoomText(breakRoom())}), so main_arena is non-contiguous ` +
    '(its NONCONTIGUOUS_BIT is set): glibc took its memory with mmap instead, and never gives it back by lowering the break';
}
