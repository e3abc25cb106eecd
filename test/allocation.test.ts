import { describe, expect, it } from 'vitest';
import {
  alignedAlloc, allocationAt, calloc, free, glibcVersion, liveAllocations, mallinfo2, malloc, mallocUsableSize, pageSize,
  programBreak, realloc, runPlan, usableSizeOf,
} from '../lib/index';
import { maps, parseMaps, regionOf } from '../lib/maps';
import { MMAPPED_TAIL } from './helpers/glibc-here';

describe('malloc', () => {
  it('malloc(10) gives 24 usable bytes in a 32-byte chunk', () => {
    const a = malloc(10);
    try {
      expect(a.requested).toBe(10);
      // 32 by the rule; 48 when the best free chunk would have left a
      // remainder under MINSIZE and malloc handed all of it out.
      expect([32, 48]).toContain(a.chunk.size);
      expect(a.usableSize).toBe(a.chunk.size - 8);
      expect(a.chunk.address).toBe(a.address - 16n);
      expect(a.chunk.isMmapped).toBe(false);
      expect(a.address % 16n).toBe(0n);
    } finally {
      a.free();
    }
  });

  it('malloc(0) still returns a minimum chunk', () => {
    const a = malloc(0);
    expect(a.address).not.toBe(0);
    expect([32, 48]).toContain(a.chunk.size); // 48: a remainder under MINSIZE handed out with it
    expect(a.usableSize).toBe(a.chunk.size - 8);
    a.free();
  });

  it('malloc(24) fills a 32-byte chunk exactly; malloc(25) needs a bigger one', () => {
    const a = malloc(24);
    const b = malloc(25);
    expect([32, 48]).toContain(a.chunk.size); // 48: a remainder under MINSIZE handed out with it
    expect(a.usableSize).toBe(a.chunk.size - 8);
    expect(b.chunk.size).toBeGreaterThanOrEqual(48);
    expect(b.usableSize).toBe(b.chunk.size - 8);
    a.free();
    b.free();
  });

  it('a 1 MiB block is mmapped on its own, outside [heap], with usable = chunk - 16 (from 2.43, chunk - 8, 16 bytes short of whole pages)', () => {
    const a = malloc(1 << 20);
    try {
      const { chunk } = a;
      expect(chunk.isMmapped).toBe(true);
      expect(a.usableSize).toBe(usableSizeOf(chunk.size, true, MMAPPED_TAIL));
      expect((chunk.size + MMAPPED_TAIL) % pageSize()).toBe(0);
      const region = a.region;
      expect(region).toBeDefined();
      expect(region!.kind).not.toBe('heap');
      const heap = maps().find((r) => r.kind === 'heap')!;
      expect(a.address < heap.start || a.address >= heap.end).toBe(true);
    } finally {
      a.free();
    }
  });

  it('a small block from main_arena lies in [heap], below the program break', () => {
    // The thread's tcache can hold chunks other threads allocated and this
    // one freed; malloc hands those back first (they carry the A bit). A
    // tcache bin holds at most 7, so the 8th block comes from main_arena.
    const blocks = Array.from({ length: 8 }, () => malloc(10));
    try {
      const heap = maps().find((r) => r.kind === 'heap')!;
      for (const a of blocks) {
        const inHeap = a.address >= heap.start && a.address < heap.end;
        expect(inHeap).toBe(!a.chunk.nonMainArena);
      }
      const last = blocks[7];
      expect(last.chunk.nonMainArena).toBe(false);
      expect(last.region?.kind).toBe('heap');
      expect(last.address).toBeLessThan(programBreak());
    } finally {
      for (const a of blocks) a.free();
    }
  });

  it('programBreak() is the end of [heap]', () => {
    // Break and maps from one native call: between two calls from JS, another
    // thread's malloc can move the break.
    const [brk, snapshot] = runPlan([{ op: 'break' }, { op: 'maps' }]).steps;
    const regions = parseMaps(snapshot.maps!);
    const heap = regions.find((r) => r.kind === 'heap');
    expect(heap).toBeDefined();
    expect(brk.programBreak).toBe(heap!.end);
    expect(regionOf(brk.programBreak! - 1n, regions)?.kind).toBe('heap');
    // programBreak() from JS, then the maps: another thread's malloc may grow
    // the break in between (a trim would need a large free at main_arena's
    // top), so the break read first lies inside [heap] or at its end.
    const before = programBreak();
    const now = maps().find((r) => r.kind === 'heap')!;
    expect(before).toBeGreaterThan(now.start);
    expect(before).toBeLessThanOrEqual(now.end);
  });

  it('calloc zeroes and multiplies', () => {
    const a = calloc(3, 10);
    expect(a.requested).toBe(30);
    expect(a.usableSize).toBeGreaterThanOrEqual(30);
    expect([...a.read(0, 30)].every((b) => b === 0)).toBe(true);
    a.free();
  });

  it('realloc moves or grows in place and retires the old handle', () => {
    const a = malloc(16);
    a.write(0, 'hello');
    const b = realloc(a, 4000);
    expect(a.freed).toBe(true);
    expect(b.freed).toBe(false);
    expect(b.usableSize).toBeGreaterThanOrEqual(4000);
    expect(b.read(0, 5).toString()).toBe('hello');
    expect(() => a.usableSize).toThrow(expect.objectContaining({ code: 'ERR_FREED' }));
    b.free();
  });

  it('alignedAlloc honours the alignment', () => {
    for (const alignment of [16, 64, 4096]) {
      const a = alignedAlloc(alignment, 100);
      expect(a.address % BigInt(alignment)).toBe(0n);
      a.free();
    }
  });

  it('mallocUsableSize and free take the handle or its address', () => {
    const a = malloc(100);
    expect(mallocUsableSize(a.address)).toBe(a.usableSize);
    free(a.address);
    expect(a.freed).toBe(true);
  });

  it('read, write and fill stay inside the usable size', () => {
    const a = malloc(10);
    a.fill(0x41);
    expect(a.read().toString()).toBe('A'.repeat(24));
    a.write(20, Buffer.from([1, 2, 3, 4]));
    expect([...a.read(20)]).toEqual([1, 2, 3, 4]);
    a.free();
  });

  it('keeps track of what is live', () => {
    const before = liveAllocations().length;
    const a = malloc(10);
    expect(liveAllocations()).toContain(a);
    a.free();
    expect(liveAllocations().length).toBe(before);
  });

  it('drops a handle from the live table when it is freed while newer handles wait to enter it', () => {
    // 48 and 64 bytes: chunks of two sizes, so that no address comes back between the steps.
    const old = malloc(48);
    expect(allocationAt(old.address)).toBe(old);
    const newer = malloc(64);
    old.free();
    expect(allocationAt(old.address)).toBeUndefined();
    expect(allocationAt(newer.address)).toBe(newer);
    // Freed before the handle made after it: the later one is still found.
    const a = malloc(48);
    const b = malloc(64);
    a.free();
    expect(allocationAt(a.address)).toBeUndefined();
    expect(allocationAt(b.address)).toBe(b);
    newer.free();
    b.free();
    expect(liveAllocations()).not.toContain(b);
  });

  // Handles enter the live table when it is next read (lib/allocation.ts), or when 4,096 wait.
  it('takes every handle made past the bound of those waiting into the table, and drops each as it is freed', () => {
    const blocks = Array.from({ length: 5_000 }, (_, i) => malloc(16 + (i % 3) * 16));
    const found = (): number => blocks.filter((a) => allocationAt(a.address) === a).length;
    expect(found()).toBe(5_000);
    expect(liveAllocations().filter((a) => blocks.includes(a))).toHaveLength(5_000);
    // Made again with no read between: the first 4,096 enter the table when the bound is met, the rest wait.
    for (const a of blocks) a.free();
    blocks.splice(0, blocks.length, ...Array.from({ length: 5_000 }, (_, i) => malloc(16 + (i % 3) * 16)));
    // Freed last first, before any read: the ones still waiting leave the list, the others the table.
    for (const a of blocks.slice(2_500).reverse()) a.free();
    expect(found()).toBe(2_500);
    expect(blocks.slice(2_500).filter((a) => allocationAt(a.address) !== undefined)).toEqual([]);
    for (const a of blocks.slice(0, 2_500)) a.free();
    expect(found()).toBe(0);
    expect(liveAllocations().filter((a) => blocks.includes(a))).toEqual([]);
  });

  it('finds each live handle by address and no freed one, whatever order blocks are made, freed and looked up in', () => {
    const before = new Set(liveAllocations());
    const held = new Map<bigint, ReturnType<typeof malloc>>();
    const dead: ReturnType<typeof malloc>[] = [];
    const expectTable = (): void => {
      for (const [address, a] of held) expect(allocationAt(address)).toBe(a);
      for (const a of dead) if (!held.has(a.address)) expect(allocationAt(a.address)).toBeUndefined();
      expect(liveAllocations().filter((a) => !before.has(a)).sort((x, y) => Number(x.address - y.address)))
        .toEqual([...held.values()].sort((x, y) => Number(x.address - y.address)));
    };
    // Four patterns, from a 32-bit LCG's high bits: freed at once (the address comes back); the one
    // before last freed through its handle; one made long before, through its handle; the one before
    // last freed by its address, a lookup, which reads the table (only in the second half: the first
    // makes past 4,096 handles with no read).
    let seed = 7;
    for (let i = 0; i < 12_000; i++) {
      const a = malloc(16 + (i % 5) * 16);
      held.set(a.address, a);
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const pick = (seed >>> 16) % 16;
      if (pick < 4) {
        held.delete(a.address);
        a.free();
        dead.push(a);
      } else if (pick < 8 && held.size > 1) {
        const [address, earlier] = [...held].at(-2)!;
        held.delete(address);
        if (pick === 7 && i >= 6_000) free(address);
        else earlier.free();
        dead.push(earlier);
      } else if (pick < 10 && held.size > 100) {
        const [address, old] = held.entries().next().value!;
        held.delete(address);
        old.free();
        dead.push(old);
      }
      if (i === 6_000 || (i > 6_000 && i % 2_000 === 0)) expectTable();
    }
    expectTable();
    for (const a of held.values()) a.free();
    held.clear();
    expectTable();
    expect(dead.every((a) => a.freed)).toBe(true);
  });
});

describe('mallinfo2', () => {
  it('names which call answered', () => {
    const info = mallinfo2();
    const [major, minor] = glibcVersion().split('.').map(Number);
    expect(info.source).toBe(major > 2 || minor >= 33 ? 'mallinfo2' : 'mallinfo');
    expect(info.usmblks).toBe(0);
    expect(info.arena).toBeGreaterThan(0);
  });
});
