// Copied memory: reads inside a range, and a stated reason (never live
// memory, never a crash) outside them.
import { describe, expect, it } from 'vitest';
import { copiedMemory, holds, readBytes, readWord } from '../../lib/allocator/memory-source';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Bytes made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const source = copiedMemory([
  { base: 0x2000n, bytes: bytes(0x100, 2), label: 'arena heap' },
  { base: 0x1000n, bytes: bytes(0x100, 1), label: '[heap]' },
]);

describe('MemorySource', () => {
  it('keeps its ranges in address order and reads inside them', () => {
    expect(source.ranges.map((r) => r.label)).toEqual(['[heap]', 'arena heap']);
    expect([...source.read(0x10f8n, 8)]).toEqual(new Array(8).fill(1));
    expect(readWord(source, 0x2000n)).toBe(0x0202020202020202n);
    expect(holds(source, 0x20f8n, 8)).toBe(true);
    expect(holds(source, 0x20f9n, 8)).toBe(false);
  });

  it('fails with ERR_NOT_IN_SNAPSHOT and the reason outside them: between, past the end, across an end', () => {
    expect(() => source.read(0x1800n, 8)).toThrow(expect.objectContaining({
      code: 'ERR_NOT_IN_SNAPSHOT', message: '8 bytes at 0x1800 were not copied: it lies outside every copied range (the next one up is arena heap 0x2000–0x2100)',
    }));
    expect(readBytes(source, 0x3000n, 8)).toBe('8 bytes at 0x3000 were not copied: it lies above every copied range');
    expect(readWord(source, 0x10fcn)).toBe('8 bytes at 0x10fc were not copied: it runs past the end of the copy of [heap] 0x1000–0x1100');
    expect(readBytes(source, 0n, 1)).toMatch(/next one up is \[heap\]/);
  });

  it('refuses overlapping ranges', () => {
    expect(() => copiedMemory([
      { base: 0x1000n, bytes: bytes(0x100, 0), label: 'a' }, { base: 0x10f0n, bytes: bytes(0x10, 0), label: 'b' },
    ])).toThrow(expect.objectContaining({ code: 'ERR_NOT_IN_SNAPSHOT', message: 'copied ranges overlap: a 0x1000–0x1100 and b 0x10f0–0x1100' }));
  });

  it("reads words by number as read() reads them, at every offset, and a copy whose buffer was taken away holds nothing", () => {
    const random = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 151 + 7) & 0xff);
    const ranges = [{ base: 0x5000n, bytes: random(0x40), label: '[heap]' }, { base: 0x5040n, bytes: random(0x20), label: 'arena heap' }];
    const m = copiedMemory(ranges);
    expect(m.word).toBeTypeOf('function');
    for (let a = 0x4ff0n; a < 0x5070n; a++) {
      const bytes = readBytes(m, a, 8);
      const expected = typeof bytes === 'string' ? bytes : Buffer.from(bytes).readBigUInt64LE(0);
      expect(readWord(m, a), `at ${a}`).toBe(expected);
    }
    // Both ranges are read: across their meeting point a word is in neither.
    expect(typeof readWord(m, 0x503cn)).toBe('string');
    structuredClone(ranges[0].bytes.buffer, { transfer: [ranges[0].bytes.buffer] });
    expect(readWord(m, 0x5000n)).toMatch(/were not copied/);
    expect(readWord(m, 0x5040n)).toBe(Buffer.from(ranges[1].bytes).readBigUInt64LE(0));
  });

  it('reads ranges that reach past 2^53 through read(), with their bigint addresses', () => {
    const high = copiedMemory([{ base: (1n << 53n) - 8n, bytes: new Uint8Array(16).fill(3), label: 'high' }]);
    expect(high.word).toBeUndefined();
    expect(readWord(high, (1n << 53n) + 0n)).toBe(0x0303030303030303n);
    expect(readWord(high, (1n << 53n) + 1n)).toMatch(/runs past the end/);
  });
});

