// How sysmalloc ends a heap it leaves depends on the old top's size
// (malloc.c, sysmalloc): test/fixtures/old-heap-ends.c leaves it at 32, 48
// and 96 bytes in three thread arenas, and at 48 in main_arena as brk()
// fails. The walk must call glibc's fenceposts fenceposts in each case,
// never chunks in use, and walk on to their end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attach, HeapWalk } from '../../lib/index';
import { AllocatorFixture, startAllocatorFixture } from '../helpers/allocator-fixture';
import { heapRoomNotNeeded } from '../helpers/heap-room';
import { OLD_TOP_FREED_TO } from '../helpers/glibc-here';

// Another process is read, none of this one's heap.
heapRoomNotNeeded();

let fixture: AllocatorFixture | undefined;
let skip: string | undefined;
let walk: HeapWalk;

beforeAll(async () => {
  const started = await startAllocatorFixture('old-heap-ends');
  if (typeof started === 'string') {
    skip = started;
    return;
  }
  fixture = started;
  walk = attach(fixture.child.pid!).walk();
});

afterAll(() => fixture?.stop());

describe('the end of a heap sysmalloc left', () => {
  it('in a thread arena is a 16-byte fencepost after a 32-byte top, a 32-byte one after a 48-byte top, a freed 64-byte chunk and a 16-byte fencepost after a 96-byte top', (context) => {
    if (skip !== undefined) context.skip(skip);
    expect(walk.consistent, walk.inconsistency).toBe(true);
    expect(walk.problems).toEqual([]);
    const old = walk.threadHeaps.filter((h) => h.heapInfo!.prev === 0n && h.end - h.start === 64n << 20n);
    expect(old).toHaveLength(3);
    expect(old.every((h) => h.complete)).toBe(true);
    // Each old heap's last chunks, from its end back to the fixture's last chunk in use.
    const ends = old.map((h) => {
      const from = h.chunks.findLastIndex((c) => c.place === 'in-use');
      return h.chunks.slice(from + 1).map((c) => `${c.size} ${c.place}`).join(', ');
    });
    const [freed, ...fenceposts] = ends.sort().reverse();
    expect(fenceposts).toEqual(['32 fencepost', '16 fencepost']);
    expect(OLD_TOP_FREED_TO.map((place) => `64 ${place}, 16 fencepost`)).toContain(freed);
    // The fenceposts end their heaps exactly.
    for (const h of old) expect(h.chunks.at(-1)!.address + BigInt(h.chunks.at(-1)!.size) + 16n).toBe(h.end);
  });

  it("in main_arena's [heap] is three chunks of 16 when brk() failed with 48 bytes of top: its rest and glibc's double fencepost", (context) => {
    if (skip !== undefined) context.skip(skip);
    const main = walk.main;
    expect(main.chunks.slice(-4).map((c) => `${c.size} ${c.place}`)).toEqual([expect.stringMatching(/^\d+ in-use$/), '16 fencepost', '16 fencepost', '16 fencepost']);
    expect(main.chunks.at(-1)!.address + 16n).toBe(main.end);
    const fence = main.chunks.at(-2)!.address;
    expect(main.reason).toContain(`double fencepost (0x${fence.toString(16)}, after the 16 bytes sysmalloc left of the old top at 0x${(fence - 16n).toString(16)})`);
    expect(walk.mainTop?.chunks.at(-1)?.place).toBe('top');
  });
});
