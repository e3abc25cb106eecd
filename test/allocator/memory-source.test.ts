// Copied memory: reads inside a range, and a stated reason (never live
// memory, never a crash) outside them.
import { describe, expect, it } from 'vitest';
import { copiedMemory, holds, readBytes, readWord } from '../../lib/allocator/memory-source';

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
});
