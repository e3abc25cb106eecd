// chunkAtOrBefore from a chunk found before (`near`), as placeChunks and the
// header-only memory look listed chunks up: the same answer as the search
// from the ends, for every start and every offset, on tables whose offsets
// are spaced as a walk's are (each chunk at least 16 bytes past the last).
import { describe, expect, it } from 'vitest';
import { chunkAtOrBefore } from '../../lib/walk/chunk';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Offsets made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

/** A small deterministic generator (xorshift32), so a failure names its seed. */
function random(seed: number): () => number {
  // Spread over 32 bits: a small seed's first outputs would all be near 0.
  let x = Math.imul(seed, 0x9e3779b9) || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('chunkAtOrBefore from a chunk found before', () => {
  it('finds what the search from the ends finds, for every start, on tables of 0 to 300 chunks', () => {
    const wrong: string[] = [];
    const sizes: number[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(seed);
      const count = Math.floor(next() * 300);
      const offsets = new Float64Array(count + 5);
      let at = 16 * Math.floor(next() * 4);
      for (let i = 0; i < count; i++) {
        offsets[i] = at;
        at += 16 * (1 + Math.floor(next() * (next() < 0.1 ? 500 : 8)));
      }
      // Past `count`, the columns hold what a bigger table left: never to be read.
      offsets.fill(-1, count);
      const queries = [-16, 0, 8, at, at + 1e6];
      sizes.push(count);
      for (let i = 0; i < count; i++) queries.push(offsets[i], offsets[i] + 8, offsets[i] - 8);
      for (const offset of queries) {
        const want = chunkAtOrBefore(offsets, count, offset);
        for (let near = -1; near <= count; near++) {
          const got = chunkAtOrBefore(offsets, count, offset, near);
          if (got !== want) wrong.push(`seed ${seed}, ${count} chunks, offset ${offset}, from ${near}: ${got}, not ${want}`);
        }
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    // The tables were of many lengths, long ones among them.
    expect(new Set(sizes).size).toBeGreaterThan(30);
    expect(Math.max(...sizes)).toBeGreaterThan(250);
  });
});
