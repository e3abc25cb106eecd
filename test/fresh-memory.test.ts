// Zeroed bytes for big columns come from mmap, faulted in at once
// (binding.freshBuffer, lib/fresh-memory.ts): zero, as long as asked,
// writable, given back like a plan's copy, and refused with a code for a
// length no Buffer can have. A walk's columns of that size use them.
import { describe, expect, it } from 'vitest';
import { binding } from '../lib/binding';
import { zeroedBytes } from '../lib/fresh-memory';
import { walkSnapshot } from '../lib/walk/chunk';

const MiB = 1 << 20;
const allZero = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0);

describe('fresh memory for columns', () => {
  it('is zero, as long as asked and writable; from 2 MiB on it is mapped, and given back as a copy is', () => {
    for (const length of [0, 1, 4095, 2 * MiB - 1, 2 * MiB, 3 * MiB + 5]) {
      const bytes = zeroedBytes(length);
      expect(bytes.length, String(length)).toBe(length);
      expect(bytes.byteOffset).toBe(0);
      expect(allZero(bytes)).toBe(true);
      bytes.fill(0xa5);
      expect(bytes.every((b) => b === 0xa5)).toBe(true);
      // Only a mapped one is a registered copy: releaseCopies gives it back, and its views then read as empty.
      const mapped = length >= 2 * MiB;
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
    // 240,000 chunks of 32 bytes and a top of 64: columns of 9 bytes a chunk (offsets and bits), over 2 MiB.
    const count = 240_000;
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
});
