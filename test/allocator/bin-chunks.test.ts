// A bin's chunks kept as columns in blocks (lib/allocator/bin-chunks.ts):
// what the columns say, and the `chunks` made from them, must be what was
// pushed, across block edges, after a list is cut short and grown again,
// for a chunk at 2^53 or above and a large bin's first of a size.
import { describe, expect, it } from 'vitest';
import { Bin, BinChunk, binBytes, binColumns, binOf, ListedChunks } from '../../lib/allocator/bin-chunks';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Columns pushed here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const BASE = 0x5555_0000_0000n;

/**
 * The n-th chunk pushed in a round: mostly exact, every 1000th above 2^53,
 * every 777th a large bin's first of a size (shifted by the round, so that
 * a chunk pushed again after a cut is another, and its place's old one
 * cannot pass for it).
 */
function nth(n: number, round = 0): BinChunk {
  const address = (n + round) % 1000 === 999 ? (1n << 60n) + BigInt(n) * 16n : BASE + BigInt(n) * 48n + BigInt(round) * 0x1000_0000n;
  const size = 32 + 16 * ((n + round) % 7);
  return (n + round) % 777 === 5 ? { address, size, fdNextsize: address + 1n, bkNextsize: address + 2n } : { address, size };
}

function push(list: ListedChunks, model: BinChunk[], from: number, to: number, round = 0): void {
  for (let n = from; n < to; n++) {
    const chunk = nth(n, round);
    // As the walks push: by number when the chunk is exact and carries nothing more, else the object.
    if (chunk.address < 1n << 53n && chunk.fdNextsize === undefined) list.push(Number(chunk.address), chunk.size);
    else list.pushChunk(chunk);
    model.push(chunk);
  }
}

function expectSame(list: ListedChunks, model: BinChunk[]): void {
  expect(list.length).toBe(model.length);
  for (let i = 0; i < model.length; i++) {
    expect(list.address(i)).toBe(model[i].address);
    expect(list.size(i)).toBe(model[i].size);
    expect(list.addressNumber(i)).toBe(model[i].address < 1n << 53n ? Number(model[i].address) : NaN);
  }
  expect(Array.from({ length: list.length }, (_, i) => list.chunk(i))).toEqual(model);
}

describe('a bin\'s chunks as columns', () => {
  it('hold what was pushed across block edges, cut short anywhere and grown again', () => {
    const list = new ListedChunks();
    const model: BinChunk[] = [];
    push(list, model, 0, 5000);
    expectSame(list, model);
    let round = 0;
    for (const cut of [4097, 4096, 4095, 2049, 2048, 2047, 1, 0]) {
      list.truncate(cut);
      model.length = cut;
      expectSame(list, model);
      round += 1;
      push(list, model, cut, cut + 2100, round);
      expectSame(list, model);
      list.truncate(cut);
      model.length = cut;
    }
  });

  it('make a Bin whose chunks are built when first read, the same to JSON, spreads and equality', () => {
    const list = new ListedChunks();
    const model: BinChunk[] = [];
    push(list, model, 0, 3000);
    const bin = binOf(5, list, 'a reason', 0x10n);
    expect(Object.keys(bin)).toEqual(['index', 'count', 'chunks', 'reason', 'uncopied']);
    expect(bin).toEqual({ index: 5, count: 3000, chunks: model, reason: 'a reason', uncopied: 0x10n });
    expect({ ...bin }.chunks).toEqual(model);
    expect(binColumns(bin)).toBe(list);
    expect(binBytes(bin)).toBe(model.reduce((n, c) => n + c.size, 0));
  });

  it('are read from `chunks` for a Bin no walk made', () => {
    const model: BinChunk[] = Array.from({ length: 2500 }, (_, n) => nth(n));
    const bin: Bin = { index: 2, count: model.length, chunks: model };
    expectSame(binColumns(bin), model);
    expect(binBytes(bin)).toBe(model.reduce((n, c) => n + c.size, 0));
  });
});
