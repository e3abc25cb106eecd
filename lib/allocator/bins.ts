// An arena's bins: the 10 fastbins, the unsorted bin, 62 small bins and 63
// large bins, each list followed and checked (bin-walk.ts), and the binmap.
import { Arena } from './arenas';
import { MallocState } from './decode';
import { Bin, walkFastbin, walkRegularBin } from './bin-walk';
import { AllocatorImage } from './image';
import { defineOwn, own } from '../validate';

export type { Bin, BinChunk } from './bin-walk';

export interface ArenaBins {
  arena: bigint;
  kind: 'main' | 'thread';
  fastbins: Bin[];
  /** One bin: index 1. */
  unsorted: Bin[];
  /** Bins 2–63, one chunk size each. */
  smallbins: Bin[];
  /** Bins 64–126, each a range of sizes, sorted large to small. */
  largebins: Bin[];
  /**
   * The four binmap words, and the bins whose bit is set. A set bit may be
   * stale (malloc clears it only when it finds the bin empty); a clear bit
   * on a bin that holds chunks is an inconsistency, given as that bin's reason.
   */
  binmap: { words: number[]; marked: number[] };
  /** Every list was followed to its end without an inconsistency. */
  complete: boolean;
}

/**
 * The bins of `arena`, whose malloc_state is `s`, read from the image. In
 * loops, not callbacks: a closure made for each call is compiled again for
 * each walk (V8 drops its optimized code with the closure), and arrays
 * pushed onto are the same kind of array whether this code runs optimized
 * or not (map and filter made packed arrays in one case and holey ones in
 * the other, and the code reading them was deoptimized at each change).
 */
export function decodeBins(image: AllocatorImage, arena: Arena, s: MallocState): ArenaBins {
  const fastbins: Bin[] = [];
  for (let index = 0; index < s.fastbins.length; index++) fastbins.push(walkFastbin(image, arena, index, s.fastbins[index]));
  // Before malloc's first call main_arena's bin headers are still zero, not yet linked to themselves.
  const untouched = s.top === 0n;
  const marked: number[] = [];
  for (let index = 0; index < 128; index++) if ((s.binmap[index >> 5] >>> (index & 31)) & 1) marked.push(index);
  const unsorted: Bin[] = [];
  const smallbins: Bin[] = [];
  const largebins: Bin[] = [];
  let complete = true;
  for (const b of fastbins) if (own(b, 'reason') !== undefined) complete = false;
  for (const b of s.bins) {
    if (b.index > 126) continue;
    const bin: Bin = untouched && b.fd === 0n && b.bk === 0n
      ? { index: b.index, count: 0, chunks: [] }
      : walkRegularBin(image, arena, b.index, b.address, b.fd, b.bk);
    if (bin.index >= 2 && bin.count > 0 && own(bin, 'reason') === undefined && !marked.includes(bin.index)) {
      defineOwn(bin, 'reason', `bin ${bin.index} holds ${bin.count} chunks, but its binmap bit is clear`);
    }
    if (own(bin, 'reason') !== undefined) complete = false;
    if (bin.index === 1) unsorted.push(bin);
    else if (bin.index >= 64) largebins.push(bin);
    else if (bin.index >= 2) smallbins.push(bin);
  }
  return {
    arena: arena.address, kind: arena.kind,
    fastbins, unsorted, smallbins, largebins,
    binmap: { words: [...s.binmap], marked },
    complete,
  };
}
