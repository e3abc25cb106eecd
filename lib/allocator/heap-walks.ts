// Every arena's memory walked chunk by chunk from the image: main_arena's
// [heap] from its first chunk to the break (and, when it went
// non-contiguous, its top chunk where the copy holds it), and each thread
// arena's heaps, the newest up to top, the older ones up to their fencepost.
import { hex } from '../format';
import { MAX_PLAN_READ } from '../plan';
import { own } from '../validate';
import { StoredWalk, walkSnapshotStored } from '../walk/chunk';
import { walkMainHeap } from '../walk/main-arena';
import { Arena } from './arenas';
import { HeapInfo } from './decode';
import { AllocatorImage } from './image';
import { rangeOf, readBytes } from './memory-source';

export interface RegionWalk {
  /** The arena whose memory this is. */
  arena: bigint;
  /**
   * `heap`: main_arena's [heap]. `top-region`: a non-contiguous main_arena's
   * top chunk, in memory glibc took with mmap. `arena-heap`: a thread arena's heap.
   */
  kind: 'heap' | 'top-region' | 'arena-heap';
  start: bigint;
  /** Where its chunks end: the break, or the heap's start + heap_info.size. */
  end: bigint;
  heapInfo?: HeapInfo;
  /** The chunks: `walk.table` offsets count from `start`. */
  walk: StoredWalk;
  /** Why the chunks do not tile the region up to top (or a fencepost), when they do not. */
  reason?: string;
}

/** Where a region's walk stopped, when it has a reason (its chunks past that point are no chunks of the walk); its end otherwise. */
export function stoppedAt(w: RegionWalk): bigint {
  return own(w, 'reason') === undefined ? w.end : w.start + BigInt(w.walk.reached);
}

/** Walks every arena's memory that the image holds; `sbrkBase` (mp_'s) says where main_arena's first chunk is. */
export function walkArenas(image: AllocatorImage, arenas: readonly Arena[], sbrkBase?: bigint): RegionWalk[] {
  const out: RegionWalk[] = [];
  for (const arena of arenas) {
    if (arena.kind === 'main') {
      if (image.heap !== undefined) out.push(walkMain(image, arena, sbrkBase));
      const top = walkOutsideTop(image, arena);
      if (top !== undefined) out.push(top);
      continue;
    }
    for (const info of arena.heaps) out.push(walkThreadHeap(image, arena, info));
  }
  return out;
}

function empty(base: bigint, reason: string): StoredWalk {
  return { base, table: { count: 0, offsets: new Uint32Array(1), bits: new Uint8Array(0) }, ending: 'stopped', reason, top: -1, reached: 0 };
}

function region(arena: bigint, kind: RegionWalk['kind'], start: bigint, end: bigint, walk: StoredWalk, reason?: string, heapInfo?: HeapInfo): RegionWalk {
  const why = reason ?? own(walk, 'reason');
  return { arena, kind, start, end, walk, ...(heapInfo === undefined ? {} : { heapInfo }), ...(why === undefined ? {} : { reason: why }) };
}

function walkMain(image: AllocatorImage, arena: Arena, sbrkBase: bigint | undefined): RegionWalk {
  const { start, end } = image.heap!;
  const copy = rangeOf(image.memory, start);
  if (copy === undefined || copy.base !== start) return region(arena.address, 'heap', start, end, empty(start, `[heap] at ${hex(start)} was not copied`));
  if (BigInt(copy.bytes.length) < end - start) {
    // Shorter for another reason (a partial copy made on purpose): nothing is walked from it.
    if (BigInt(copy.bytes.length) !== MAX_PLAN_READ) return region(arena.address, 'heap', start, end, empty(start, `only ${copy.bytes.length} bytes of [heap] were copied`));
    // A [heap] bigger than one copy holds: its chunks are walked as far as the copy goes.
    const walk = walkMainHeap(copy.bytes, start, start + BigInt(copy.bytes.length), sbrkBase);
    const reason = `only the first ${copy.bytes.length} bytes of [heap] (${end - start} up to the break) were copied; the walk stops there`;
    return region(arena.address, 'heap', start, end, { ...walk, ending: 'stopped', top: -1, reason }, reason);
  }
  const bytes = copy.bytes.subarray(0, Number(end - start));
  const walk = walkMainHeap(bytes, start, end, sbrkBase);
  const top = walk.top >= 0 ? start + BigInt(walk.table.offsets[walk.top]) : undefined;
  const reason = top !== undefined && top !== arena.top.address
    ? `the chunk that ends [heap] is at ${hex(top)}, but main_arena's top is ${hex(arena.top.address)}` : gapBeforeTop(walk, start, end, arena);
  return region(arena.address, 'heap', start, end, walk, reason);
}

/**
 * Whether a walk of [heap] that ended in glibc's double fencepost short of
 * the break, with no chunk header after it, is not whole: main_arena's top
 * lies further in [heap], so glibc's sbrk went on past a gap that something
 * else took (a foreign sbrk: sysmalloc adds it to a contiguous arena's
 * system_mem, not to a non-contiguous one's), from where glibc records
 * nowhere.
 */
export function stopsBeforeTop(walk: StoredWalk, start: bigint, end: bigint, main: Arena): boolean {
  const reached = start + BigInt(walk.reached);
  const top = main.top.address;
  return walk.ending === 'fencepost' && reached < end && top > reached && top < end;
}

/** Why main_arena's walk stopped short of its top (stopsBeforeTop), or undefined where it did not. */
function gapBeforeTop(walk: StoredWalk, start: bigint, end: bigint, main: Arena): string | undefined {
  if (!stopsBeforeTop(walk, start, end, main)) return undefined;
  const reached = start + BigInt(walk.reached);
  const top = main.top.address;
  return `main_arena's chunks stop at glibc's double fencepost ending at ${hex(reached)}, where what follows is no chunk header, yet its top lies further in [heap], ` +
    `at ${hex(top)}: something other than malloc moved the break between two of glibc's sbrks (a foreign sbrk${main.noncontiguous ? '' : ', which glibc counts in system_mem'}), ` +
    `and where main_arena's chunks go on after that gap glibc records nowhere, so the ${top - reached} bytes up to its top are not walked`;
}

function walkThreadHeap(image: AllocatorImage, arena: Arena, info: HeapInfo): RegionWalk {
  const end = info.address + info.size;
  const infoSize = image.layout.heapInfo.size;
  // _int_new_arena puts the malloc_state after the first heap's heap_info,
  // and the first chunk where its user memory is 16-byte aligned.
  const holdsArena = arena.address === info.address + BigInt(infoSize);
  const after = holdsArena ? infoSize + image.layout.mallocState.size : infoSize;
  const first = Math.ceil((after + 16) / 16) * 16 - 16;
  if (info.size > 1n << 40n || info.size < BigInt(first + 32)) {
    return region(arena.address, 'arena-heap', info.address, end, empty(info.address, `heap_info at ${hex(info.address)} gives size ${hex(info.size)}, which leaves no room for chunks`), undefined, info);
  }
  const bytes = readBytes(image.memory, info.address, Number(info.size));
  if (typeof bytes === 'string') return region(arena.address, 'arena-heap', info.address, end, empty(info.address, bytes), undefined, info);
  const top = arena.top.address;
  const holdsTop = top >= info.address && top < end;
  const walk = walkSnapshotStored(bytes, info.address, { start: first, end: bytes.length, fenceposts: !holdsTop, ...(holdsTop ? { top } : {}) });
  return region(arena.address, 'arena-heap', info.address, end, walk, undefined, info);
}

/**
 * A non-contiguous main_arena's top chunk, when the copy holds it outside
 * [heap]: its own region, one chunk that must end where its size says.
 */
function walkOutsideTop(image: AllocatorImage, arena: Arena): RegionWalk | undefined {
  const { address, size } = arena.top;
  if (!arena.noncontiguous || size === undefined) return undefined;
  if (image.heap !== undefined && address >= image.heap.start && address < image.heap.end) return undefined;
  const copy = rangeOf(image.memory, address);
  if (copy === undefined || size > BigInt(copy.bytes.length) || address + size > copy.base + BigInt(copy.bytes.length)) return undefined;
  const bytes = copy.bytes.subarray(Number(address - copy.base), Number(address - copy.base + size));
  const walk = walkSnapshotStored(bytes, address, { end: bytes.length, top: address, mainArena: true });
  return region(arena.address, 'top-region', address, address + size, walk);
}
