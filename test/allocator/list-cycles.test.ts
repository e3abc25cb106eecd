// Lists that come round, built byte by byte: the bin walks keep no set of
// the chunks they met (bin-walk.ts), yet must stop where one would have, at
// the first chunk met again, with the same count and the same reason, for
// any length before the cycle and any cycle length, the arena's cap on a
// list's length before, at or after that point, by number and by bigint.
import { describe, expect, it } from 'vitest';
import { Arena } from '../../lib/allocator/arenas';
import { walkFastbin, walkRegularBin } from '../../lib/allocator/bin-walk';
import { AllocatorImage } from '../../lib/allocator/image';
import { copiedMemory } from '../../lib/allocator/memory-source';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Lists built here byte by byte, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const BASE = 0x5555_0000_0000n;
/** A small bin header's address, outside the copied memory: the walks never read it. */
const HEADER = 0x7fff_0000_0000n;

/** Each test chunk of 0x20 bytes is followed by an in-use one of 0x20, whose P bit is clear and prev_size 0x20: the first is free. */
const chunkAt = (i: number): bigint => BASE + BigInt(0x40 * i);

interface Shape { chunks: number; back: number; cap: number }

/**
 * `chunks` chunks listed in address order, the last linking back to chunk
 * `back`; an arena whose system_mem holds `cap` chunks of 0x20. Words by
 * number, or (bigintOnly) through a source with no reads by number.
 */
function listed({ chunks, back, cap }: Shape, bigintOnly: boolean): { image: AllocatorImage; arena: Arena } {
  const bytes = Buffer.alloc(0x40 * chunks);
  for (let i = 0; i < chunks; i++) {
    const at = 0x40 * i;
    const next = i + 1 < chunks ? chunkAt(i + 1) : chunkAt(back);
    bytes.writeBigUInt64LE(0x21n, at + 8);
    bytes.writeBigUInt64LE(next, at + 16);
    bytes.writeBigUInt64LE(i === 0 ? HEADER : chunkAt(i - 1), at + 24);
    bytes.writeBigUInt64LE(0x20n, at + 32);
    bytes.writeBigUInt64LE(0x20n, at + 40);
  }
  const source = copiedMemory([{ base: BASE, bytes, label: 'test chunks' }]);
  const memory = bigintOnly ? { ranges: source.ranges, read: source.read, word: source.word } : source;
  const image = { memory, layout: { safeLinking: false } } as unknown as AllocatorImage;
  const arena = {
    kind: 'main', memory: [{ start: BASE, end: BASE + BigInt(bytes.length) }], systemMem: BigInt(0x20 * cap),
  } as unknown as Arena;
  return { image, arena };
}

/** What a walk that kept a set of the chunks met says: the chunks up to the first met again, or up to the cap. */
function expected({ chunks, back, cap }: Shape, cycle: string): { count: number; reason: string } {
  // Chunk i is listed i-th; the one after the last is `back` again, met at index `chunks`.
  if (cap < chunks) return { count: cap, reason: `the list goes on past ${cap} chunks, all the arena's system_mem (${0x20 * cap} bytes) can hold` };
  return { count: chunks, reason: `the list comes back to 0x${chunkAt(back).toString(16)}${cycle}` };
}

const shapes: Shape[] = [];
for (const chunks of [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 100, 257]) {
  for (const back of new Set([0, 1, Math.floor(chunks / 2), chunks - 2, chunks - 1].filter((b) => b >= 0 && b < chunks))) {
    for (const cap of new Set([chunks - 1, chunks, chunks + 1, 2 * chunks, 10_000].filter((c) => c >= 1))) shapes.push({ chunks, back, cap });
  }
}

describe('a list that comes round', () => {
  it(`stops a fastbin at the first chunk met again, or at the cap, as a set of the chunks met would (${shapes.length} shapes)`, () => {
    for (const shape of shapes) {
      for (const bigintOnly of [false, true]) {
        const { image, arena } = listed(shape, bigintOnly);
        const bin = walkFastbin(image, arena, 0, chunkAt(0));
        const want = expected(shape, ': a cycle');
        expect({ count: bin.count, chunks: bin.chunks.length, reason: bin.reason }, JSON.stringify({ ...shape, bigintOnly }))
          .toEqual({ count: want.count, chunks: want.count, reason: want.reason });
        expect(bin.chunks.map((c) => c.address)).toEqual(Array.from({ length: want.count }, (_, i) => chunkAt(i)));
      }
    }
  });

  it(`stops a small bin at the first chunk met again, or at the cap, as a set of the chunks met would (${shapes.length} shapes)`, () => {
    for (const shape of shapes) {
      for (const bigintOnly of [false, true]) {
        const { image, arena } = listed(shape, bigintOnly);
        const bin = walkRegularBin(image, arena, 2, HEADER, chunkAt(0), chunkAt(shape.chunks - 1));
        const want = expected(shape, " without returning to the bin's header: a cycle");
        expect({ count: bin.count, chunks: bin.chunks.length, reason: bin.reason }, JSON.stringify({ ...shape, bigintOnly }))
          .toEqual({ count: want.count, chunks: want.count, reason: want.reason });
        expect(bin.chunks.map((c) => c.address)).toEqual(Array.from({ length: want.count }, (_, i) => chunkAt(i)));
      }
    }
  });
});
