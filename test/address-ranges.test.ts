// Range arithmetic shared by the copy planner, the doctor and the map diffs.
import { describe, expect, it } from 'vitest';
import { intersection, mergedRanges, subtractRanges } from '../lib/address-ranges';
import { heapRoomNotNeeded } from './helpers/heap-room';

// Bytes made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const r = (start: number, end: number) => ({ start: BigInt(start), end: BigInt(end) });
const plain = (list: { start: bigint; end: bigint }[]) => list.map((x) => [Number(x.start), Number(x.end)]);

describe('subtractRanges', () => {
  it('takes out ranges given in any order, overlapping or touching, and keeps what none covers', () => {
    expect(plain(subtractRanges([r(0, 100), r(200, 300)], [r(250, 260), r(10, 20), r(15, 30), r(30, 40), r(90, 210)])))
      .toEqual([[0, 10], [40, 90], [210, 250], [260, 300]]);
  });

  it('leaves a range nothing touches whole, and drops one covered whole', () => {
    expect(plain(subtractRanges([r(0, 10), r(20, 30)], [r(10, 20), r(19, 31)]))).toEqual([[0, 10]]);
    expect(plain(subtractRanges([r(0, 10)], []))).toEqual([[0, 10]]);
  });

  it('agrees with mergedRanges: what is taken out and what is left make up the range', () => {
    const minus = [r(5, 9), r(1, 3), r(2, 4), r(12, 40)];
    const left = subtractRanges([r(0, 20)], minus);
    const inside = mergedRanges(minus).map((m) => ({ start: m.start > 0n ? m.start : 0n, end: m.end < 20n ? m.end : 20n }));
    const total = [...left, ...inside].reduce((n, x) => n + Number(x.end - x.start), 0);
    expect(total).toBe(20);
  });
});

describe('intersection', () => {
  it('is where two ranges overlap, and undefined where they only touch or lie apart', () => {
    expect(intersection(r(0, 10), r(5, 20))).toEqual(r(5, 10));
    expect(intersection(r(5, 20), r(0, 10))).toEqual(r(5, 10));
    expect(intersection(r(0, 30), r(10, 20))).toEqual(r(10, 20));
    expect(intersection(r(0, 10), r(10, 20))).toBeUndefined();
    expect(intersection(r(0, 10), r(15, 20))).toBeUndefined();
  });
});
