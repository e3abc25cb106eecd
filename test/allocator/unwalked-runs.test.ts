// Runs of binned chunks no walk holds (a non-contiguous main_arena's memory
// outside [heap]), from the lists alone: pure, so fed lists a corrupt
// process could hold.
import { describe, expect, it } from 'vitest';
import type { ArenaBins } from '../../lib/allocator/bins';
import type { RegionWalk } from '../../lib/allocator/heap-walks';
import { listedChunks, unwalkedRuns } from '../../lib/allocator/listed';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Bytes made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

const chunk = (address: bigint, size: number) => ({ address, size });
const bin = (...chunks: { address: bigint; size: number }[]) => ({ chunks });

function binsOf(lists: Partial<Record<'fastbins' | 'unsorted' | 'smallbins' | 'largebins', ReturnType<typeof bin>[]>>): ArenaBins {
  return { fastbins: [], unsorted: [], smallbins: [], largebins: [], ...lists } as unknown as ArenaBins;
}

describe('unwalkedRuns', () => {
  it('joins adjacent chunks into runs and counts a chunk that two lists hold once', () => {
    const bins = binsOf({
      unsorted: [bin(chunk(0x10000n, 0x100), chunk(0x30000n, 0x40))],
      smallbins: [bin(chunk(0x10100n, 0x200)), bin(chunk(0x10000n, 0x100))],
    });
    expect(unwalkedRuns(bins, [], listedChunks([bins], []))).toEqual([
      { start: 0x10000n, size: 0x300n },
      { start: 0x30000n, size: 0x40n },
    ]);
  });

  it('leaves out chunks inside any walk, whichever arena it is of', () => {
    const bins = binsOf({ largebins: [bin(chunk(0x10000n, 0x1000), chunk(0x90000n, 0x1000))] });
    const walk = { arena: 0x7000n, kind: 'arena-heap', start: 0x80000n, end: 0xa0000n } as unknown as RegionWalk;
    expect(unwalkedRuns(bins, [walk], listedChunks([bins], []))).toEqual([{ start: 0x10000n, size: 0x1000n }]);
  });
});
