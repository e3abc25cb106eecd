// One frame of the bins experiment: a copy of the allocator made inside the
// plan right after a step, decoded on its own, and what the rows keep of it:
// main_arena's bins and the calling thread's tcache bins that hold chunks,
// top, last_remainder, glibc's parameters, and where each test chunk is.
import { PlaceKind, placeColumns, placedChunk, RegionPlaceColumns } from '../../allocator/places';
import { AllocatorState } from '../../allocator/state';
import { hex } from '../../format';
import { chunkAtOrBefore } from '../../walk/chunk';
import { own } from '../../validate';

export type BinKind = 'tcache' | 'fastbin' | 'unsorted' | 'smallbin' | 'largebin';

/** One bin holding chunks after a step, as the frame's decode listed it. */
export interface BinLine {
  kind: BinKind;
  /** The bin's index (the unsorted bin is 1). */
  index: number;
  /** The test chunks in it, in list order (head first), by name. */
  ours: string[];
  /** Chunks in it that are no test chunk. */
  others: number;
  /** Why the list could not be followed to its end, when it could not. */
  reason?: string;
}

/** Where a test chunk is after a step. */
export interface ChunkPlace {
  name: string;
  /** The chunk (its prev_size word), not the user pointer. */
  address: bigint;
  /** The size of the chunk that starts at `address` now, or of the one it merged into. */
  size: number;
  /** `merged`: the chunk no longer starts a chunk; it is part of `within`. `missing`: the walk did not reach it. */
  place: PlaceKind | 'merged' | 'missing';
  bin?: number;
  /** merged: the chunk it is now part of, by name, or its address. */
  within?: string;
  /** merged: where that chunk is. */
  withinPlace?: PlaceKind;
  withinBin?: number;
}

/** glibc's parameters as this frame read them. */
export interface FrameParams {
  tcacheCount: number;
  tcacheBins: number;
  tcacheMaxBytes: number;
  /** undefined: its offset from main_arena could not be told for this libc. */
  globalMaxFast?: number;
  trimThreshold: number;
}

/** What the rows keep of one decoded frame. */
export interface FrameState {
  bins: BinLine[];
  top: { address: bigint; size: number };
  /** main_arena's last_remainder (a chunk address; 0 when none). */
  lastRemainder: bigint;
  params: FrameParams;
  /** main_arena's [heap] placed, for `placeOf`: its chunks are looked up one at a time, not made all. */
  heap?: RegionPlaceColumns;
}

/** The frame's bins, top, last_remainder and parameters; `names` are the test chunks by address. */
export function frameState(state: AllocatorState, names: ReadonlyMap<bigint, string>): FrameState {
  const main = state.arenas.arenas.find((a) => a.kind === 'main')!;
  const bins = state.bins.find((b) => b.arena === main.address)!;
  const cache = state.tcaches.tcaches.find((t) => t.owner === 'calling-thread');
  const lines: BinLine[] = [];
  const add = (kind: BinKind, list: readonly { index: number; chunks: readonly { address: bigint }[]; reason?: string }[]) => {
    for (const bin of list) {
      if (bin.chunks.length === 0 && own(bin, 'reason') === undefined) continue;
      const ours = bin.chunks.map((c) => names.get(c.address)).filter((n): n is string => n !== undefined);
      lines.push({ kind, index: bin.index, ours, others: bin.chunks.length - ours.length, ...(own(bin, 'reason') === undefined ? {} : { reason: bin.reason }) });
    }
  };
  if (cache !== undefined) add('tcache', cache.bins);
  add('fastbin', bins.fastbins);
  add('unsorted', bins.unsorted);
  add('smallbin', bins.smallbins);
  add('largebin', bins.largebins);
  const p = state.params;
  const heap = state.placement.regions.find((r) => r.arena === main.address && r.kind === 'heap');
  return {
    bins: lines,
    top: { address: main.top.address, size: Number(main.top.size ?? 0n) },
    lastRemainder: main.lastRemainder,
    params: {
      tcacheCount: Number(p.values.tcacheCount),
      tcacheBins: Number(p.values.tcacheBins),
      tcacheMaxBytes: Number(p.values.tcacheMaxBytes),
      ...(p.globalMaxFast.found ? { globalMaxFast: p.globalMaxFast.value } : {}),
      trimThreshold: Number(p.values.trimThreshold),
    },
    ...(heap === undefined ? {} : { heap: placeColumns(heap) }),
  };
}

/** Where the chunk at `address` is in the frame: a chunk of its own, or part of the chunk before it that it merged into. */
export function placeOf(frame: FrameState, name: string, address: bigint, names: ReadonlyMap<bigint, string>): ChunkPlace {
  const { heap } = frame;
  // The last chunk that starts at or below the address.
  const start = heap?.walk.start ?? 0n;
  const at = heap === undefined || address < start ? -1 : chunkAtOrBefore(heap.walk.walk.table.offsets, heap.walk.walk.table.count, Number(address - start));
  const c = at < 0 ? undefined : placedChunk(heap!, at);
  if (c === undefined || c.address + BigInt(c.size) <= address) return { name, address, size: 0, place: 'missing' };
  const bin = c.bin === undefined ? {} : { bin: c.bin };
  if (c.address === address) return { name, address, size: c.size, place: c.place, ...bin };
  return {
    name, address, size: c.size, place: 'merged', within: names.get(c.address) ?? hex(c.address), withinPlace: c.place,
    ...(c.bin === undefined ? {} : { withinBin: c.bin }),
  };
}
