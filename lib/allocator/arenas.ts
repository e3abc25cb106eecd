// Every arena, from main_arena along `next` until the list returns to it,
// each with its heaps (thread arenas: heap_info from the heap holding top,
// back along `prev`). Pure: everything comes from the image's copies.
import { hex } from '../format';
import { own } from '../validate';
import { decodeHeapInfo, decodeMallocState, HeapInfo, MallocPar, MallocState } from './decode';
import { AllocatorImage } from './image';
import type { GlibcLayout } from './layouts';
import { AddressRange } from './locate-input';
import { readBytes, readWord } from './memory-source';

/** HEAP_MAX_SIZE on 64-bit: 2 × DEFAULT_MMAP_THRESHOLD_MAX. */
const HEAP_MAX_SIZE = 64n << 20n;
/** More arenas or heaps than this means a corrupt list: 64-bit arena_max defaults to 8 × cores. */
const MAX_ARENAS = 4096;
const MAX_HEAPS = 1 << 16;
const SIZE_BITS = 7n;

export interface Arena {
  address: bigint;
  /** main_arena, or an arena a thread created (its malloc_state at the start of its first heap). */
  kind: 'main' | 'thread';
  /** Thread arenas: every heap, newest (the one holding top) first, as `prev` leads. main_arena has none: it grows [heap] with sbrk. */
  heaps: HeapInfo[];
  /** Why the heaps could not all be read, when they could not. */
  heapsReason?: string;
  /** The heap_info that could not be read because it is not in the copy. */
  heapsUnread?: bigint;
  /** Where this arena's chunks lie: [heap] up to the break, or its heaps' used parts; empty when unknown. */
  memory: AddressRange[];
  flags: number;
  /** NONCONTIGUOUS_BIT (2) of flags: the arena's memory need not be one piece (always so for thread arenas). */
  noncontiguous: boolean;
  /** undefined from 2.43, which has no fastbins (an own field all the same). */
  haveFastchunks: number | undefined;
  mutex: number;
  /** Both fields are own, one of them undefined: a reader never reaches a polluted Object.prototype. */
  top: { address: bigint; size: bigint | undefined; reason: string | undefined };
  lastRemainder: bigint;
  systemMem: bigint;
  maxSystemMem: bigint;
  next: bigint;
  nextFree: bigint;
  attachedThreads: bigint;
}

export interface ArenaList {
  arenas: Arena[];
  /** Each arena's malloc_state as decoded (bins included), in the same order. */
  states: MallocState[];
  /** `next` led back to main_arena. */
  complete: boolean;
  /** Why the list stopped, when it did. */
  reason?: string;
  /** The arena the list led to that is not in the copy. */
  unread?: bigint;
}

/** heap_max_size () (GlibcLayout.heapMax); heap_for_ptr rounds an address down to it. */
export function heapMaxSize(layout: GlibcLayout, par: MallocPar | undefined): bigint {
  const huge = par?.hpPagesize ?? 0n;
  return layout.heapMax === 'four-huge-pages' && huge !== 0n ? huge * 4n : HEAP_MAX_SIZE;
}

/**
 * Whether ptmalloc_init made main_arena's sbrk fail on purpose
 * (__always_fail_morecore), so that it maps all its memory, of huge pages
 * where it can: so where glibc.malloc.hugetlb set mp_.hp_pagesize, from 2.42
 * only where a huge page is at most heap_max_size ().
 */
export function hugePagesForceMmap(layout: GlibcLayout, par: MallocPar): boolean {
  const huge = par.hpPagesize ?? 0n;
  return huge !== 0n && (layout.heapMax === 'four-huge-pages' || huge <= HEAP_MAX_SIZE);
}

/** Every arena from main_arena at `main`, read from the image. */
export function decodeArenas(image: AllocatorImage, main: bigint, par: MallocPar | undefined): ArenaList {
  const arenas: Arena[] = [];
  const states: MallocState[] = [];
  const seen = new Set<bigint>();
  for (let at = main; ;) {
    if (arenas.length === MAX_ARENAS) return { arenas, states, complete: false, reason: `more than ${MAX_ARENAS} arenas: the next list must be corrupt` };
    const bytes = readBytes(image.memory, at, image.layout.mallocState.size);
    if (typeof bytes === 'string') return { arenas, states, complete: false, reason: `the arena at ${hex(at)} cannot be read: ${bytes}`, unread: at };
    const state = decodeMallocState(bytes, 0, image.layout, at);
    seen.add(at);
    arenas.push(arena(image, state, at === main, par));
    states.push(state);
    if (state.next === main) return { arenas, states, complete: true };
    if (seen.has(state.next)) return { arenas, states, complete: false, reason: `arena ${hex(at)} leads back to ${hex(state.next)}, not to main_arena` };
    at = state.next;
  }
}

function arena(image: AllocatorImage, s: MallocState, isMain: boolean, par: MallocPar | undefined): Arena {
  const topWord = readWord(image.memory, s.top + 8n);
  const top = typeof topWord === 'string' ? { address: s.top, size: undefined, reason: topWord } : { address: s.top, size: topWord & ~SIZE_BITS, reason: undefined };
  const out: Arena = {
    address: s.address, kind: isMain ? 'main' : 'thread', heaps: [], memory: [],
    flags: s.flags, noncontiguous: (s.flags & 2) !== 0, haveFastchunks: s.haveFastchunks, mutex: s.mutex, top,
    lastRemainder: s.lastRemainder, systemMem: s.systemMem, maxSystemMem: s.maxSystemMem,
    next: s.next, nextFree: s.nextFree, attachedThreads: s.attachedThreads,
  };
  if (isMain) {
    if (image.heap !== undefined && !out.noncontiguous) out.memory = [image.heap];
    return out;
  }
  const found = heapsOf(image, s, heapMaxSize(image.layout, par));
  const { heaps } = found;
  const reason = own(found, 'reason');
  const unread = own(found, 'unread');
  out.heaps = heaps;
  out.memory = heaps.map((h) => ({ start: h.address, end: h.address + h.size }));
  if (reason !== undefined) out.heapsReason = reason;
  if (unread !== undefined) out.heapsUnread = unread;
  return out;
}

/** heap_for_ptr (top), then `prev` until 0; each must name this arena, and the oldest must hold it. */
function heapsOf(image: AllocatorImage, s: MallocState, maxSize: bigint): { heaps: HeapInfo[]; reason?: string; unread?: bigint } {
  const heaps: HeapInfo[] = [];
  const seen = new Set<bigint>();
  const infoSize = image.layout.heapInfo.size;
  for (let h = s.top & ~(maxSize - 1n); ;) {
    if (seen.has(h) || heaps.length === MAX_HEAPS) return { heaps, reason: `the heaps' prev list loops at ${hex(h)}` };
    seen.add(h);
    const bytes = readBytes(image.memory, h, infoSize);
    if (typeof bytes === 'string') return { heaps, reason: `heap_info at ${hex(h)} cannot be read: ${bytes}`, unread: h };
    const info = decodeHeapInfo(bytes, 0, image.layout, h);
    if (info.arPtr !== s.address) return { heaps, reason: `heap_info at ${hex(h)} names arena ${hex(info.arPtr)}, not ${hex(s.address)}` };
    heaps.push(info);
    if (info.prev === 0n) {
      const home = h + BigInt(infoSize);
      return home === s.address ? { heaps } : { heaps, reason: `the oldest heap, at ${hex(h)}, does not hold the arena (it would be at ${hex(home)})` };
    }
    h = info.prev;
  }
}
