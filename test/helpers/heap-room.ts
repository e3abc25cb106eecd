// About one node start in a hundred here has V8's code range right above
// the heap (lib/break-room.ts). On 2026-12-06: 5 of 300 starts of a plain
// `node`, in each of two runs, had less than NEEDED_ROOM above the heap
// (in the second run each of the five had the code range's first page at
// the heap's end), and on 2026-12-07 4 of 300 with the test processes'
// flags; 13 of 1,100 with --no-short-builtin-calls; none of 300 under
// `setarch -R` (no address randomization). In the eight such starts
// traced with --trace-code-range-allocation, V8 asked for its 512 MiB
// reservation at the heap's end and got it there. In 300 starts traced so
// on 2026-12-07, V8 asked at the heap's end in the 7 that had no room, and
// only in those; in the 293 others it asked just past node's binary (146)
// or inside what [heap] had grown to by the time the map was read (147),
// and its reservation went near the top of the address space.
// In such a test process brk() fails as soon as the heap reaches it and
// main_arena turns non-contiguous: [heap] ends in fenceposts, new chunks
// come from memory glibc took with mmap, the break never moves. Every test
// of the live heap would measure that instead of what it is about, so a
// test process without room skips its tests, saying so;
// test/walk/non-contiguous.test.ts and test/run.test.ts make that case on
// purpose and test it in every run.
// The test processes now run with V8's JIT off (`--jitless`,
// vitest.config.ts): V8 then reserves no code range at all. Measured on
// 2026-12-07, with the test processes' other flags: 2 of 300 starts with
// the JIT had too little room and 0 of 300 without it, in turns; then 0 of
// 1,000 without it. The two files that drive Chromium keep the JIT
// (playwright-core loads Node's fetch, whose parser is WebAssembly); they
// read no live heap of their own process. The check stays, for whatever
// else could come to be mapped above the heap.
import { beforeEach } from 'vitest';
import { breakRoom, breakRoomText } from '../../lib/break-room';

/** More than any test here grows its own process's heap. */
const NEEDED_ROOM = 256n << 20n;

const room = breakRoom();
const blocked = room.room < NEEDED_ROOM ? `this test process's heap cannot grow: ${breakRoomText(room)}` : undefined;

let needed = true;

/**
 * Called at the top of a test file that reads no live heap of its own
 * process (decoders over bytes it makes itself, runs that all happen in
 * children): its tests run whatever room this process has. The setup file
 * and the test file share this module.
 */
export function heapRoomNotNeeded(): void {
  needed = false;
}

beforeEach((context) => {
  context.skip(needed && blocked !== undefined, blocked);
});
