import { describe, expect, it } from 'vitest';
import { AddressTable } from '../lib/address-table';
import { heapRoomNotNeeded } from './helpers/heap-room';

// Numbers made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

// The live handles' table against a Map, over the address patterns a heap
// makes: blocks side by side (the table keeps each KiB of addresses
// together, so dense blocks make long runs), the same offsets in 64 MiB
// arena heaps, page-aligned mmapped blocks, and addresses at random.
const BASE = 0x5555_0000_0000;
const ARENAS = 0x7f00_0000_0000;

/** A 32-bit LCG: the same keys every run. */
function random(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

const PATTERNS: [string, () => number[]][] = [
  ['blocks side by side (32 to 128 bytes)', () => {
    const sizes = [32, 48, 32, 128];
    const keys: number[] = [];
    for (let i = 0, at = BASE + 16; i < 200_000; at += sizes[i % 4], i++) keys.push(at);
    return keys;
  }],
  ['32-byte blocks, every granule pair taken', () => Array.from({ length: 200_000 }, (_, i) => BASE + 16 + 32 * i)],
  ['the same offsets in eight 64 MiB arena heaps', () => {
    const keys: number[] = [];
    for (let a = 0; a < 8; a++) for (let i = 0; i < 25_000; i++) keys.push(ARENAS + a * 2 ** 26 + 0x8b0 + 48 * i);
    return keys;
  }],
  ['page-aligned blocks 64 KiB apart', () => Array.from({ length: 50_000 }, (_, i) => ARENAS + 16 + 65_536 * i)],
  ['16-byte-aligned addresses at random in 1 GiB', () => {
    const next = random(7);
    return [...new Set(Array.from({ length: 100_000 }, () => BASE + 16 * (1 + next(1 << 26))))];
  }],
];

// Blocks of one size side by side, at sizes whose spacing some hashes turn
// into long runs of taken slots (each probe of a lookup is one slot more):
// 48,032 bytes made a run of 141 with the granule hashed alone, 561,488 one
// of 3,307 with each KiB kept together.
const SPACINGS: [number, number][] = [[32, 200_000], [4016, 100_000], [6304, 100_000], [48_032, 10_000], [49_552, 10_000], [561_488, 10_000]];

describe('AddressTable', () => {
  it('keeps every run of taken slots short for blocks of one size side by side', () => {
    const runs = SPACINGS.map(([spacing, count]) => {
      const table = new AddressTable<number>();
      for (let i = 0; i < count; i++) table.set(BASE + 16 + spacing * i, i);
      return [spacing, table.longestRun()];
    });
    expect(runs.filter(([, run]) => run > 64)).toEqual([]);
  });

  for (const [name, make] of PATTERNS) {
    it(`answers as a Map does: ${name}, through growth, deletes and sets again`, () => {
      const keys = make();
      const table = new AddressTable<number>();
      const oracle = new Map<number, number>();
      keys.forEach((k, i) => {
        table.set(k, i);
        oracle.set(k, i);
      });
      const next = random(keys.length);
      // Half deleted at random, some twice, then a quarter set again with new values.
      const deleted: [boolean, boolean][] = [];
      for (let n = 0; n < keys.length / 2; n++) {
        const k = keys[next(keys.length)];
        deleted.push([table.delete(k), oracle.delete(k)]);
      }
      expect(deleted.filter(([got, want]) => got !== want)).toEqual([]);
      for (let n = 0; n < keys.length / 4; n++) {
        const k = keys[next(keys.length)];
        // -1 and below: a -0 would sort beside the 0 set first, in either order.
        table.set(k, -n - 1);
        oracle.set(k, -n - 1);
      }
      expect(table.size).toBe(oracle.size);
      const wrong = keys.filter((k) => table.get(k) !== oracle.get(k));
      expect(wrong).toEqual([]);
      // Addresses never set: inside the blocks, and past them.
      const found = keys.filter((k, i) => i % 7 === 0 && (table.get(k + 8) !== undefined || table.get(k + 2 ** 40) !== undefined));
      expect(found).toEqual([]);
      expect(table.values().sort((x, y) => x - y)).toEqual([...oracle.values()].sort((x, y) => x - y));
      // The keys within a range through the middle of the pattern: the Map's there, its first one in, its last one out.
      const sorted = [...oracle.keys()].sort((x, y) => x - y);
      const [lo, hi] = [sorted[sorted.length >> 2], sorted[(3 * sorted.length) >> 2]];
      expect([...table.keysWithin(lo, hi)].sort((x, y) => x - y)).toEqual(sorted.filter((k) => k >= lo && k < hi));
      expect([...oracle.keys()].filter((k) => !table.delete(k))).toEqual([]);
      expect(table.size).toBe(0);
      expect(table.values()).toEqual([]);
    });
  }
});
