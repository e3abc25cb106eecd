// The fillers that empty this thread's tcache and main_arena's bins before
// the test chunks are carved. What they must take is read from one snapshot
// decoded only as far as the lists: a whole decode (a walk of [heap]) mallocs
// and frees enough on its own to refill the bins before the plan runs.
import { decodeArenas } from '../../allocator/arenas';
import { decodeBins } from '../../allocator/bins';
import { decodeMallocPar } from '../../allocator/decode';
import { locateGlobals, requireGlobals } from '../../allocator/image';
import { readBytes } from '../../allocator/memory-source';
import { takeAllocatorSnapshot } from '../../allocator/take-snapshot';
import { findTcaches } from '../../allocator/tcaches';
import { HeapscopeError } from '../../errors';
import { PlanStep } from '../../plan';
import { walkSnapshot } from '../../walk/chunk';
import { mainFirstChunk } from '../../walk/main-arena';
import { freeChunkSizes } from '../measure';

/** Bytes of [heap] walked to find this thread's tcache where its first malloc made it: its struct is among the first chunks. */
const HEAD = 64 * 1024;

export interface Fillers {
  steps: PlanStep[];
  /** mp_.tcache_count and mp_.trim_threshold in the same snapshot. */
  tcacheCount: number;
  trimThreshold: number;
  tcacheFillers: number;
  binFillers: number;
  /** The chunks' bytes: what the fillers take from top when every one misses its chunk. */
  bytes: number;
}

/** A filler for each chunk the calling thread's tcache and main_arena's bins hold now: the tcache's first. */
export function fillers(): Fillers {
  const snapshot = takeAllocatorSnapshot({ probe: true });
  const { image } = snapshot;
  const { mainArena, mallocPar } = requireGlobals(locateGlobals(image));
  const parBytes = readBytes(image.memory, mallocPar, image.layout.mallocPar.size);
  if (typeof parBytes === 'string') throw new HeapscopeError('ERR_NOT_IN_SNAPSHOT', `mp_ cannot be read: ${parBytes}`);
  const par = decodeMallocPar(parBytes, 0, image.layout, mallocPar);
  const list = decodeArenas(image, mainArena, par);
  const main = list.arenas.findIndex((a) => a.kind === 'main');
  const bins = decodeBins(image, list.arenas[main], list.states[main]);
  const steps: PlanStep[] = [];
  let bytes = 0;
  const filler = (size: number) => {
    steps.push({ op: 'malloc', size: size - 8 });
    bytes += size;
  };
  if (image.heap !== undefined) {
    // From main_arena's first chunk: past what the program took with brk before malloc's first sbrk, if anything.
    const first = image.heap.start + BigInt(mainFirstChunk(image.heap, par.sbrkBase));
    // Where a thread's first free, not its first malloc, makes its tcache (2.43), it can lie anywhere in [heap].
    const span = image.layout.tcacheMadeAt === 'first-malloc' ? HEAD : Number(image.heap.end - first);
    const end = first + BigInt(Math.max(0, Math.min(span, Number(image.heap.end - first))));
    // The walk stops where the copy ends: the chunks it read before are what the tcache search needs.
    const walk = walkSnapshot(image.memory.read(first, Number(end - first)), first, { mainArena: true });
    const { tcaches } = findTcaches(image, [list.arenas[main]], [{ arena: mainArena, kind: 'heap', start: first, end, walk }], par, snapshot.probe);
    const own = tcaches.find((t) => t.owner === 'calling-thread');
    // The tcache first: a filler for a bin's chunk would otherwise get a cached one of its size.
    for (const bin of own?.bins ?? []) for (const c of bin.chunks) filler(c.size);
  }
  const tcacheFillers = steps.length;
  const sizes = freeChunkSizes(bins);
  for (const size of sizes) filler(size);
  return { steps, tcacheCount: Number(par.tcacheCount), trimThreshold: Number(par.trimThreshold), tcacheFillers, binFillers: sizes.length, bytes };
}
