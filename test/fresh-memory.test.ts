// Zeroed bytes for big columns come from mmap, faulted in at once
// (binding.freshBuffer, lib/fresh-memory.ts): zero, as long as asked,
// writable, given back like a plan's copy, and refused with a code for a
// length no Buffer can have. A walk's columns of that size use them.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { binding } from '../lib/binding';
import { dropPages, FRESH_FROM, zeroedBytes } from '../lib/fresh-memory';
import { chunkSize, ChunkWalker, walkSnapshot, walkSnapshotStored } from '../lib/walk/chunk';
import { heapRoomNotNeeded } from './helpers/heap-room';

// Mapped memory, no heap: runs whatever room the process has.
heapRoomNotNeeded();

const MiB = 1 << 20;
const allZero = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0);

describe('fresh memory for columns', () => {
  it('is zero, as long as asked and writable; from FRESH_FROM (128 KiB, glibc\'s least mmap threshold) on it is mapped, and given back as a copy is', () => {
    expect(FRESH_FROM).toBe(128 * 1024);
    for (const length of [0, 1, 4095, FRESH_FROM - 1, FRESH_FROM, 2 * MiB, 3 * MiB + 5]) {
      const bytes = zeroedBytes(length);
      expect(bytes.length, String(length)).toBe(length);
      expect(bytes.byteOffset).toBe(0);
      expect(allZero(bytes)).toBe(true);
      bytes.fill(0xa5);
      expect(bytes.every((b) => b === 0xa5)).toBe(true);
      // Only a mapped one is a registered copy: releaseCopies gives it back, and its views then read as empty.
      const mapped = length >= FRESH_FROM;
      expect(binding.releaseCopies([Buffer.from(bytes.buffer)]), String(length)).toBe(mapped ? 1 : 0);
      expect(bytes.length).toBe(mapped ? 0 : length);
    }
  });

  it('refuses a length no Buffer can have, with a code', () => {
    for (const length of [0, -1, 1.5, 2 ** 32 + 1, Number.NaN]) {
      expect(() => binding.freshBuffer(length), String(length)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    }
    expect(() => binding.freshBuffer('4096' as never)).toThrow(expect.objectContaining({ code: expect.stringMatching(/^ERR_INVALID_ARG_TYPE|ERR_OUT_OF_RANGE$/) }));
  });

  it('holds a big walk\'s two columns, one buffer, each as the walk read it', () => {
    // 480,000 chunks of 32 bytes and a top of 64: columns of 5 bytes a chunk (32-bit offsets and bits), over 2 MiB.
    const count = 480_000;
    const bytes = Buffer.alloc(32 * count + 64);
    for (let i = 0; i < count; i++) bytes.writeBigUInt64LE(0x21n, 32 * i + 8);
    bytes.writeBigUInt64LE(0x41n, 32 * count + 8);
    const base = 0x5555_0000_0000n;
    const walk = walkSnapshot(bytes, base, { top: base + BigInt(32 * count), mainArena: true });
    expect(walk.ending).toBe('top');
    const { offsets, sizes, bits } = walk.table;
    expect(walk.table.count).toBe(count + 1);
    // Compared as booleans: a failed toBe on two buffers of megabytes is a diff vitest takes minutes to print.
    expect(offsets.buffer === bits.buffer).toBe(true);
    expect(offsets.buffer.byteLength).toBeGreaterThanOrEqual(2 * MiB);
    for (const i of [0, 1, 2, 65_535, count - 1]) {
      expect([offsets[i], sizes[i]]).toEqual([32 * i, 32]);
    }
    // The top, then where the walk ended, one past the last chunk.
    expect([offsets[count], sizes[count]]).toEqual([32 * count, 64]);
    expect(offsets[count + 1]).toBe(32 * count + 64);
    expect(walk.reached).toBe(32 * count + 64);
  });

  it('leaves mapped bytes to be faulted in as written when asked, and hands back their whole pages (dropPages)', () => {
    const rss = (): number => Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
    const size = 64 * MiB;
    const before = rss();
    const lazy = zeroedBytes(size, false);
    expect(rss() - before).toBeLessThan(8 * MiB);
    lazy.fill(0x5a);
    const written = rss() - before;
    expect(written).toBeGreaterThan(56 * MiB);
    // Bytes 4097 to size - 100: the whole pages among them, [8192, size - 4096), go; the two pages they share stay.
    dropPages(lazy.buffer, 4097, size - 100);
    expect(rss() - before).toBeLessThan(written - 48 * MiB);
    expect([lazy[8191], lazy[8192], lazy[size - 4097], lazy[size - 4096]]).toEqual([0x5a, 0, 0, 0x5a]);
    expect(binding.releaseCopies([Buffer.from(lazy.buffer)])).toBe(1);
  });

  it('drops no page of memory it did not map, and refuses bad arguments with a code', () => {
    const plain = new Uint8Array(1 * MiB).fill(7);
    expect(binding.dropPages(plain.buffer, 0, plain.length)).toBe(false);
    expect(plain.every((b) => b === 7)).toBe(true);
    const mapped = zeroedBytes(2 * MiB);
    expect(() => binding.dropPages(mapped.buffer as ArrayBuffer, 10, 5)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => binding.dropPages(mapped.buffer as ArrayBuffer, 0, 2 * MiB + 1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => binding.dropPages(mapped as never, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    // Given back, its buffer is detached: nothing is left to drop.
    expect(binding.releaseCopies([Buffer.from(mapped.buffer)])).toBe(1);
    expect(() => binding.dropPages(mapped.buffer as ArrayBuffer, 0, 1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('walks a big region in one pass into columns sized for the most it could hold, as the two passes walk it', () => {
    // 480,000 chunks of 32 bytes, every 100th free (the next one's P bit clear, its prev_size 32), then a top of 64.
    const count = 480_000;
    const bytes = Buffer.alloc(32 * count + 64);
    for (let i = 0; i < count; i++) {
      const prevFree = i % 100 === 1;
      bytes.writeBigUInt64LE(prevFree ? 0x20n : 0x21n, 32 * i + 8);
      if (prevFree) bytes.writeBigUInt64LE(32n, 32 * i);
    }
    bytes.writeBigUInt64LE(0x41n, 32 * count + 8);
    const base = 0x5555_0000_0000n;
    const compare = (snapshot: Buffer): void => {
      const options = { top: base + BigInt(32 * count), mainArena: true };
      const once = walkSnapshotStored(snapshot, base, options);
      const twice = walkSnapshot(snapshot, base, options);
      // The one pass's columns hold the most chunks the region could: 5 bytes each (a 32-bit offset and its bits), and one offset more.
      expect(once.table.offsets.buffer.byteLength).toBe(5 * (Math.floor(snapshot.length / 32) + 4) + 4);
      expect({ ...once, table: undefined }).toEqual({ ...twice, table: undefined });
      const n = twice.table.count;
      expect(once.table.count).toBe(n);
      const width = once.table.offsets.BYTES_PER_ELEMENT;
      expect(twice.table.offsets.BYTES_PER_ELEMENT).toBe(width);
      expect(Buffer.from(once.table.offsets.buffer, once.table.offsets.byteOffset, width * (n + 1))
        .equals(Buffer.from(twice.table.offsets.buffer, twice.table.offsets.byteOffset, width * (n + 1)))).toBe(true);
      expect(Buffer.from(once.table.bits.subarray(0, n)).equals(Buffer.from(twice.table.bits.subarray(0, n)))).toBe(true);
      expect(once.table.bits.filter((b) => b === 9).length).toBe(twice.table.bits.subarray(0, n).filter((b) => b === 9).length);
    };
    compare(bytes);
    // Stopped halfway by a size of 0: the chunks before it, and where it stopped.
    const torn = Buffer.from(bytes);
    torn.writeBigUInt64LE(0n, 32 * (count >> 1) + 8);
    compare(torn);
    expect(walkSnapshotStored(torn, base, { mainArena: true }).table.count).toBe(count >> 1);
  });

  it('gives back the columns a one-pass walk did not write', () => {
    // A 64 MiB region of two chunks: columns for two million chunks, of which each walk writes two.
    const size = 64 * MiB;
    const bytes = Buffer.alloc(size);
    bytes.writeBigUInt64LE(BigInt(size - 64) | 1n, 8);
    bytes.writeBigUInt64LE(0x41n, size - 64 + 8);
    const base = 0x5555_0000_0000n;
    const options = { top: base + BigInt(size - 64), mainArena: true };
    const rss = (): number => Number(readFileSync('/proc/self/statm', 'utf8').split(' ')[1]) * 4096;
    const before = rss();
    const walks = Array.from({ length: 8 }, () => walkSnapshotStored(bytes, base, options));
    // Without the hand-back these eight walks added 16.8 MB (measured): the huge pages their columns were first written in.
    expect(rss() - before).toBeLessThan(2 * MiB);
    expect(walks.map((w) => [w.ending, w.table.count, chunkSize(w.table, 0), chunkSize(w.table, 1)])).toEqual(Array(8).fill(['top', 2, size - 64, 64]));
    // What gives them back says whether it could: columns from malloc are not the addon's.
    const walker = (populate: boolean, expected: number) => new ChunkWalker(base, { start: 0, end: size, top: options.top, fenceposts: false, mainArena: true, expected, populate });
    const mapped = walker(false, 2 ** 21);
    mapped.feed(bytes, 0);
    expect(mapped.dropUnused()).toBe(true);
    const small = walker(true, 16);
    small.feed(bytes, 0);
    expect(small.dropUnused()).toBe(false);
  });
});
