// The walk fed a window at a time (what a doctor --pid reads of a heap it
// does not copy whole) against the walk of the whole copy, on a copy of
// this process's [heap]; and the chunk headers it keeps, read back through
// the decoders' MemorySource.
import { describe, expect, it } from 'vitest';
import { HEADER_BYTES, headerMemory, walkInWindows } from '../../lib/allocator/header-memory';
import { readWord } from '../../lib/allocator/memory-source';
import { mainHeapSnapshot } from '../../lib/index';
import { chunkSize, ChunkWalker, StoredWalk, walkSnapshot } from '../../lib/walk/chunk';
import { TCACHE_AT_FIRST_FREE, TCACHE_STRUCT_CHUNKS, TCACHE_STRUCT_SIZES } from '../helpers/glibc-here';

function windowed(bytes: Uint8Array, base: bigint, start: number, end: number, size: number) {
  const window = new Uint8Array(size);
  // The sizes a tcache struct's chunk can have on this release, as the header copy keeps them whole.
  const walker = new ChunkWalker(base, { start, end, fenceposts: false, mainArena: true, header: HEADER_BYTES, whole: Math.max(...TCACHE_STRUCT_CHUNKS) });
  let reads = 0;
  const out = walkInWindows(walker, end, '[heap]', window, TCACHE_STRUCT_CHUNKS, (at, length) => {
    reads++;
    window.set(bytes.subarray(at, at + length));
    return undefined;
  });
  return { ...out, reads };
}

// Offsets one past the count: the last chunk's end, which every size is read from.
function columns(w: StoredWalk) {
  const n = w.table.count;
  return {
    count: n, offsets: [...w.table.offsets.subarray(0, n + 1)], sizes: Array.from({ length: n }, (_, i) => chunkSize(w.table, i)), bits: [...w.table.bits.subarray(0, n)],
    ending: w.ending, reason: w.reason, top: w.top, reached: w.reached,
  };
}

describe('the walk a window at a time', () => {
  const heap = mainHeapSnapshot();
  const whole = walkSnapshot(heap.bytes, heap.base, heap);

  it('finds the chunks, flags, top and ending of the walk of the whole copy, whatever the window', () => {
    expect(whole.ending).toBe('top');
    for (const size of [4096, 4096 * 3 + 16, 1 << 16]) {
      const { walk, reads } = windowed(heap.bytes, heap.base, heap.start, heap.end, size);
      // Cut into windows (a chunk bigger than one is stepped over, not read).
      expect(reads).toBeGreaterThan(1);
      expect(columns(walk)).toEqual(columns(whole));
    }
  });

  it('keeps offsets of 4 GiB and more exactly (a region whose chunks lie 4 GiB past its base)', () => {
    // The same chunks, counted from a base 4 GiB lower: 32-bit offsets would wrap.
    const shift = 2 ** 32;
    const window = new Uint8Array(1 << 16);
    const walker = new ChunkWalker(heap.base - BigInt(shift), { start: heap.start + shift, end: heap.end + shift, fenceposts: false, mainArena: true, header: HEADER_BYTES, whole: 0x2a0 });
    const { walk } = walkInWindows(walker, heap.end + shift, '[heap]', window, [0x290, 0x2a0], (at, length) => {
      window.set(heap.bytes.subarray(at - shift, at - shift + length));
      return undefined;
    });
    const expected = columns(whole);
    expect(columns(walk)).toEqual({ ...expected, offsets: expected.offsets.map((o) => o + shift), reached: expected.reached + shift });
  });

  it('stops where the whole walk stops, with its reason, on a corrupt size word', () => {
    const bytes = Buffer.from(heap.bytes);
    const victim = Math.floor(whole.table.count / 2);
    // The size word of a chunk in the middle: 0x18, not a multiple of 16.
    bytes.writeBigUInt64LE(0x18n | 1n, whole.table.offsets[victim] + 8);
    const broken = walkSnapshot(bytes, heap.base, heap);
    expect(broken.reason).toMatch(/not a multiple of 16/);
    expect(columns(windowed(bytes, heap.base, heap.start, heap.end, 4096).walk)).toEqual(columns(broken));
  });

  it('a read that fails ends the walk with its reason', () => {
    const window = new Uint8Array(4096);
    const walker = new ChunkWalker(heap.base, { start: heap.start, end: heap.end, fenceposts: false, mainArena: true, header: HEADER_BYTES });
    const out = walkInWindows(walker, heap.end, '[heap]', window, [], (at) => (at === heap.start ? (window.set(heap.bytes.subarray(at, at + 4096)), undefined) : 'gone'));
    expect(out.failure).toBe('gone');
    expect(out.walk.ending).toBe('stopped');
    expect(out.walk.reason).toBe('gone');
  });

  it('keeps each chunk\'s first 48 bytes, and no more, for the decoders', () => {
    const { region } = windowed(heap.bytes, heap.base, heap.start, heap.end, 1 << 16);
    const memory = headerMemory([], [region]);
    const word = (offset: number) => heap.bytes.readBigUInt64LE(offset);
    for (let i = 0; i < whole.table.count; i += 97) {
      const off = whole.table.offsets[i];
      const at = heap.base + BigInt(off);
      const n = Math.min(HEADER_BYTES, heap.end - off);
      expect(Buffer.from(memory.read(at, n))).toEqual(heap.bytes.subarray(off, off + n));
      expect(readWord(memory, at + 8n)).toBe(word(off + 8));
    }
    // A chunk of more than 48 bytes that is not a tcache struct's size: its 49th byte was not kept.
    const struct = TCACHE_STRUCT_SIZES.at(-1)!;
    const sizes = [...whole.table.sizes.subarray(0, whole.table.count)];
    const big = sizes.findIndex((s, i) => s > 64 && !TCACHE_STRUCT_CHUNKS.includes(s) && i !== whole.top);
    const at = heap.base + BigInt(whole.table.offsets[big]);
    expect(memory.holds!(at, HEADER_BYTES)).toBe(true);
    expect(memory.holds!(at + 16n, HEADER_BYTES)).toBe(false);
    expect(() => memory.read(at + 40n, 16)).toThrow(expect.objectContaining({ code: 'ERR_NOT_IN_SNAPSHOT', message: expect.stringMatching(/only the first 48 bytes of each chunk of \[heap\]/) }));
    // The tcache struct's chunk, the first in [heap] (from 2.43, wherever the first free put it), is kept whole.
    const s = TCACHE_AT_FIRST_FREE ? sizes.findIndex((n) => TCACHE_STRUCT_CHUNKS.includes(n)) : 0;
    expect(sizes[s] === struct || (TCACHE_AT_FIRST_FREE && TCACHE_STRUCT_CHUNKS.includes(sizes[s]))).toBe(true);
    const off = whole.table.offsets[s];
    expect(Buffer.from(memory.read(heap.base + BigInt(off), sizes[s]))).toEqual(heap.bytes.subarray(off, off + sizes[s]));
  });
});
