// A snapshot of another process's allocator that copies, of its heaps, only
// the chunk headers: what doctor() needs, at a cost that does not grow with
// the bytes the program keeps in its blocks. The heaps are read a window at
// a time into one array and walked as they are read (ChunkWalker); libc's
// data and each heap's heap_info and malloc_state are copied whole.
//
// It counts only when malloc's state stood still from the start of the
// copy to the end of a second look, which reads again what every malloc
// and free changes: main_arena and mp_, every heap_info and thread arena's
// malloc_state, the tcache structs (and the idle-looking chunks of their
// size), and the links of every chunk the walk found free. A malloc or free
// changes a tcache, a bin's head in its arena, top, mp_'s mmap counts, or
// (a chunk taken from the middle of a bin) its neighbours' links; chunk
// sizes change only with one of these. Unlike the whole copy's byte for
// byte comparison, what a program writes into its own blocks does not
// count, and the heaps are read once, not twice.
//
// Where the header copy cannot serve (a main_arena turned non-contiguous,
// a heap the map does not name, an arena list that does not close),
// takeHeaderSnapshot returns undefined and the caller copies whole.
import { RANGES_PER_READ } from '../binding';
import { decodeArenas, Arena } from '../allocator/arenas';
import { HEADER_BYTES, HeaderRegion, headerMemory, walkInWindows } from '../allocator/header-memory';
import { RegionWalk, stopsBeforeTop } from '../allocator/heap-walks';
import { AllocatorImage, locateGlobals } from '../allocator/image';
import { GlibcLayout, tcacheChunkSizes } from '../allocator/layouts';
import { LibcFile } from '../allocator/libc-file';
import { CopiedRange, copiedMemory, readBytes, sameBytes } from '../allocator/memory-source';
import { Decoded, decodeSnapshot, madeResidentReason } from '../allocator/results';
import { listedChunks } from '../allocator/listed';
import { AllocatorState } from '../allocator/state';
import { releaseCopies, structureTornReason } from '../allocator/take-snapshot';
import { hex } from '../format';
import { keptBytes } from '../fresh-memory';
import { MemoryRegion, untouchedReadsZero } from '../maps';
import { ChunkWalker, FREE_BIT } from '../walk/chunk';
import { mainFirstChunk } from '../walk/main-arena';
import { readPacked, readRanges } from './read-ranges';
import { mapWithLibc, RemoteSnapshot } from './snapshot';
import { defineOwn, own } from '../validate';

/** Bytes read per window: large enough that a read costs little per byte, small enough to stay in cache. */
const WINDOW = 1 << 20;
/** The window's memory, mapped once and kept: from malloc, a 1 MiB array raised this process's mmap threshold once collected. */
const windowBytes = keptBytes();

interface Pass {
  maps: MemoryRegion[];
  /** The thread heaps whose heap_info this pass copied. */
  heads: MemoryRegion[];
  arenas: Arena[];
  regions: HeaderRegion[];
  walks: RegionWalk[];
  image: AllocatorImage;
  mainArena: bigint;
  mallocPar?: bigint;
  /** Why this pass is torn on its own (a read that failed), when it is. */
  torn?: string;
  pagemapErrno?: number;
}

/** Why a header copy cannot stand for the whole one: the caller then copies whole. */
class NotServed extends Error {}

/** Copies that decode into a contradiction while nothing changed, before the whole copy is made instead. */
const CONTRADICTIONS = 3;

/**
 * Takes the header snapshot of `pid` and decodes it, retaking it (up to
 * `attempts`) while it is torn. A copy whose decode contradicts itself
 * (a list cut short, a free chunk no bin lists, a walk that stops) is
 * retaken too: the program may have changed a state and changed it back
 * while it was read, which no second look can see. Undefined when the
 * target's allocator needs a whole copy: one the header copy cannot serve,
 * or one that contradicted itself CONTRADICTIONS times (a heap corrupt for
 * good is the whole copy's to show) while one of the `attempts` is left for
 * the whole copy; `spent.copies` then says how many header copies were
 * taken, at most `attempts` − 1.
 */
export function takeHeaderSnapshot(
  pid: number, layout: GlibcLayout, libc: LibcFile, attempts: number, spent: { copies: number } = { copies: 0 },
): { s: RemoteSnapshot; d: Decoded } | undefined {
  const window = windowBytes(WINDOW).subarray(0, WINDOW);
  let last: RemoteSnapshot | undefined;
  let contradictions = 0;
  let attempt = 1;
  // A copy no one will read again goes back now (its header blocks are mapped), not when the event loop next turns.
  const supersede = (next: RemoteSnapshot | undefined) => {
    if (last !== undefined) releaseCopies(last);
    last = next;
  };
  try {
    for (; attempt <= attempts; attempt++) {
      const pass = takePass(pid, layout, libc, window);
      const taken: RemoteSnapshot = {
        pid, maps: pass.maps, image: pass.image, libc, attempts: attempt, consistent: true, walks: pass.walks,
        ...(pass.pagemapErrno === undefined ? {} : { madeResident: madeResidentReason(`/proc/${pid}/pagemap`, pass.pagemapErrno) }),
      };
      let reason = pass.torn;
      if (reason === undefined) {
        const d = decodeSnapshot(taken);
        reason = tornReason(pid, libc, pass, d.state);
        if (reason === undefined) {
          const contradiction = contradictionOf(pass, d.state);
          if (contradiction === undefined) {
            supersede(undefined);
            return { s: taken, d };
          }
          // Only while one of the attempts is left for the whole copy.
          if (++contradictions >= CONTRADICTIONS && attempt < attempts) {
            spent.copies = attempt;
            supersede(taken);
            throw new NotServed();
          }
          reason = `the copy contradicts itself (${contradiction}), though nothing read again had changed: the process changed something and changed it back while it was read`;
        }
      }
      supersede({ ...taken, consistent: false, reason });
    }
  } catch (error) {
    supersede(undefined);
    // The passes before one that found it cannot serve (takePass) count too.
    if (error instanceof NotServed) {
      spent.copies = Math.max(spent.copies, attempt - 1);
      return undefined;
    }
    throw error;
  }
  return { s: last!, d: decodeSnapshot(last!) };
}

/** The first contradiction in a decode, or undefined. */
function contradictionOf(pass: Pass, state: AllocatorState): string | undefined {
  const walk = pass.walks.find((w) => own(w, 'reason') !== undefined);
  if (walk !== undefined) return `the walk of ${walk.kind} ${hex(walk.start)}: ${walk.reason}`;
  if (state.totals.incomplete.length > 0) return state.totals.incomplete[0];
  for (const t of state.tcaches.tcaches) {
    const bin = t.bins.find((b) => own(b, 'reason') !== undefined);
    if (bin !== undefined) return `the tcache at ${hex(t.address)}, bin ${bin.index}: ${bin.reason}`;
  }
  const undecoded = state.tcaches.undecoded[0];
  if (undecoded !== undefined) return `the chunk at ${hex(undecoded.address)} looks like a tcache in use, but ${undecoded.reason}`;
  const structural = structureTornReason(pass.image, pass.heads.map((h) => ({ start: h.start, end: h.end })), false);
  if (structural !== undefined) return structural;
  const listed = listedChunks(state.bins, state.tcaches.tcaches);
  let free = 0;
  for (const w of pass.walks) {
    const { table } = w.walk;
    const start = Number(w.start);
    for (let i = 0; i < table.count; i++) {
      if ((table.bits[i] & FREE_BIT) === 0) continue;
      free++;
      if (!listed.binned.has(start + table.offsets[i])) return `the chunk at ${hex(w.start + BigInt(table.offsets[i]))} is free, but no bin lists it`;
    }
  }
  const fast = state.bins.reduce((n, b) => n + b.fastbins.reduce((m, bin) => m + bin.chunks.length, 0), 0);
  if (listed.binned.size !== free + fast) return `the bins list ${listed.binned.size} chunks, but the walk found ${free} free and the fastbins hold ${fast}`;
  return undefined;
}

function takePass(pid: number, layout: GlibcLayout, libc: LibcFile, window: Uint8Array): Pass {
  const { regions: maps, libcData } = mapWithLibc(pid, libc);
  const heap = maps.find((r) => r.kind === 'heap');
  const infoSize = layout.heapInfo.size;
  // heap_info, then (in an arena's first heap) its malloc_state: as far as the first chunk of a first heap.
  const headLength = Math.ceil((infoSize + layout.mallocState.size + 16) / 16) * 16 - 16;
  const planned = [
    ...libcData.map((region) => ({ region, length: region.size, label: 'libc data' })),
    ...maps.filter((r) => r.kind === 'arena-heap').map((region) => ({ region, length: Math.min(region.size, headLength), label: 'heap_info' })),
  ];
  const reads = readRanges(pid, planned.map((p) => ({ address: p.region.start, length: BigInt(p.length), anonymous: untouchedReadsZero(p.region) })));
  const pagemapErrno = reads.map((r) => r.pagemapErrno).find((e) => e !== undefined);
  const full: CopiedRange[] = planned.flatMap((p, i) => (reads[i].bytes.length === 0 ? [] : [{ base: p.region.start, bytes: reads[i].bytes, label: p.label }]));
  const heads = planned.flatMap((p) => (p.label === 'heap_info' ? [p.region] : []));
  const base = {
    maps, heads, arenas: [] as Arena[], regions: [] as HeaderRegion[], walks: [] as RegionWalk[], mainArena: 0n,
    ...(pagemapErrno === undefined ? {} : { pagemapErrno }),
  };
  const failed = planned.findIndex((_, i) => reads[i].errno !== 0);
  const headImage: AllocatorImage = {
    layout, memory: copiedMemory(full), libcData: libcData.map((r) => ({ start: r.start, end: r.end })),
    ...(heap === undefined ? {} : { heap: { start: heap.start, end: heap.end } }),
  };
  if (failed >= 0) {
    return { ...base, image: headImage, torn: `reading ${planned[failed].label} at ${hex(planned[failed].region.start)} failed (errno ${reads[failed].errno}): the map changed since it was read` };
  }
  const globals = locateGlobals(headImage);
  if (!globals.mainArena.found) throw new NotServed();
  const par = globals.mallocPar.found ? globals.mallocPar.value : undefined;
  const list = decodeArenas(headImage, globals.mainArena.address, par);
  const main = list.arenas[0];
  if (!list.complete || list.arenas.some((a) => a.heapsReason !== undefined) || main === undefined || main.noncontiguous) throw new NotServed();
  const tcacheSizes = layout.tcache.flatMap((t) => tcacheChunkSizes(layout, t));
  const whole = Math.max(...tcacheSizes);
  const walked: { walk: RegionWalk; region: HeaderRegion }[] = [];
  let torn: string | undefined;
  let windowPagemapErrno: number | undefined;
  const stream = (arena: Arena, kind: RegionWalk['kind'], regionBase: bigint, end: number, walker: ChunkWalker, anonymous: boolean, label: string, heapInfo?: RegionWalk['heapInfo']) => {
    const { walk, region, failure } = walkInWindows(walker, end, label, window, tcacheSizes, (at, length) => {
      const [read] = readRanges(pid, [{ address: regionBase + BigInt(at), length: BigInt(length), anonymous }], window);
      windowPagemapErrno ??= read.pagemapErrno;
      if (read.errno === 0) return undefined;
      return `reading ${label} at ${hex(regionBase + BigInt(at))} failed (errno ${read.errno}): the map changed since it was read`;
    });
    torn ??= failure;
    walked.push({
      walk: { arena: arena.address, kind, start: regionBase, end: regionBase + BigInt(end), walk, ...(heapInfo === undefined ? {} : { heapInfo }), ...(own(walk, 'reason') === undefined ? {} : { reason: walk.reason }) },
      region,
    });
    return walk;
  };
  for (const arena of list.arenas) {
    if (arena.kind === 'main') {
      if (heap === undefined) continue;
      const first = mainFirstChunk(heap, par?.sbrkBase);
      const end = Number(heap.end - heap.start);
      const walk = stream(arena, 'heap', heap.start, end, new ChunkWalker(heap.start, { start: first, end, fenceposts: false, mainArena: true, header: HEADER_BYTES, whole }), untouchedReadsZero(heap), '[heap]');
      const top = walk.top >= 0 ? heap.start + BigInt(walk.table.offsets[walk.top]) : undefined;
      const entry = walked[walked.length - 1].walk;
      // A gap before the top stays in a quiet process: a whole copy shows it (a retake of this copy would only contradict itself again).
      if (stopsBeforeTop(walk, heap.start, heap.end, arena)) throw new NotServed();
      if (top !== undefined && top !== arena.top.address && own(entry, 'reason') === undefined) defineOwn(entry, 'reason', `the chunk that ends [heap] is at ${hex(top)}, but main_arena's top is ${hex(arena.top.address)}`);
      continue;
    }
    for (const info of arena.heaps) {
      const holdsArena = arena.address === info.address + BigInt(infoSize);
      const after = holdsArena ? infoSize + layout.mallocState.size : infoSize;
      const first = Math.ceil((after + 16) / 16) * 16 - 16;
      const mapped = maps.find((r) => r.start === info.address);
      if (info.size > 1n << 40n || info.size < BigInt(first + 32) || mapped === undefined || info.address + info.size > mapped.end) throw new NotServed();
      const end = Number(info.size);
      const holdsTop = arena.top.address >= info.address && arena.top.address < info.address + info.size;
      const walker = new ChunkWalker(info.address, {
        start: first, end, fenceposts: !holdsTop, ...(holdsTop ? { top: arena.top.address } : {}), mainArena: false, header: HEADER_BYTES, whole,
      });
      stream(arena, 'arena-heap', info.address, end, walker, untouchedReadsZero(mapped), 'arena heap', info);
    }
  }
  const regions = walked.map((w) => w.region);
  const image: AllocatorImage = { ...headImage, memory: headerMemory(full, regions) };
  return {
    ...base, arenas: list.arenas, regions, walks: walked.map((w) => w.walk), image, mainArena: globals.mainArena.address,
    ...(globals.mallocPar.found ? { mallocPar: globals.mallocPar.address } : {}), ...(torn === undefined ? {} : { torn }),
    ...(base.pagemapErrno === undefined && windowPagemapErrno !== undefined ? { pagemapErrno: windowPagemapErrno } : {}),
  };
}

/**
 * The first free chunk whose size and links (bytes 8 to 48: prev_size is
 * the chunk before's, whose owner may write it) read now differ from the
 * copy, or undefined. A heap can hold hundreds of thousands of free chunks:
 * each batch is read into one array and compared word by word.
 */
function changedLinks(pid: number, a: Pass): bigint | undefined {
  const LINKS = HEADER_BYTES - 8;
  const into = new Uint8Array(RANGES_PER_READ * LINKS);
  const words = new Uint32Array(into.buffer);
  const ranges = new BigUint64Array(RANGES_PER_READ * 2);
  const batch: { region: HeaderRegion; i: number; length: number }[] = [];
  const check = (): bigint | undefined => {
    const errnos = readPacked(pid, ranges.subarray(0, batch.length * 2), into);
    let at = 0;
    for (let k = 0; k < batch.length; k++) {
      const { region, i, length } = batch[k];
      if (errnos[k] !== 0 || !region.headers.same(i, 8, length, words, at)) return region.base + BigInt(region.offsets[i]);
      at += length;
    }
    batch.length = 0;
    return undefined;
  };
  for (let r = 0; r < a.walks.length; r++) {
    const { table } = a.walks[r].walk;
    const region = a.regions[r];
    for (let i = 0; i < table.count; i++) {
      if ((table.bits[i] & FREE_BIT) === 0) continue;
      const length = Math.min(LINKS, region.end - table.offsets[i] - 8);
      ranges[batch.length * 2] = region.base + BigInt(table.offsets[i] + 8);
      ranges[batch.length * 2 + 1] = BigInt(length);
      batch.push({ region, i, length });
      if (batch.length === RANGES_PER_READ) {
        const changed = check();
        if (changed !== undefined) return changed;
      }
    }
  }
  return batch.length === 0 ? undefined : check();
}

/** Why the pass does not show one state of malloc, or undefined: what every malloc and free changes is read again and compared. */
function tornReason(pid: number, libc: LibcFile, a: Pass, state: AllocatorState): string | undefined {
  const { layout } = a.image;
  const heap = a.maps.find((r) => r.kind === 'heap');
  const heapNow = mapWithLibc(pid, libc).regions.find((r) => r.kind === 'heap');
  if (heap?.end !== heapNow?.end) return `[heap] ends at ${heapNow === undefined ? 'nothing' : hex(heapNow.end)} now, not at ${heap === undefined ? 'nothing' : hex(heap.end)}: the process used malloc`;
  const watched: { what: string; address: bigint; length: number }[] = [{ what: 'main_arena', address: a.mainArena, length: layout.mallocState.size }];
  if (a.mallocPar !== undefined) watched.push({ what: 'mp_', address: a.mallocPar, length: layout.mallocPar.size });
  for (const arena of a.arenas) {
    if (arena.kind === 'thread') watched.push({ what: `arena ${hex(arena.address)}`, address: arena.address, length: layout.mallocState.size });
    for (const h of arena.heaps) watched.push({ what: `heap_info at ${hex(h.address)}`, address: h.address, length: layout.heapInfo.size });
  }
  // Every chunk of a tcache struct's size in use (the tcaches, whether their bins decoded or not: tcache calls take no lock), from its size on.
  a.regions.forEach((region, r) => {
    const { bits } = a.walks[r].walk.table;
    for (const [i, bytes] of region.kept) {
      if ((bits[i] & FREE_BIT) === 0) watched.push({ what: `the chunk at ${hex(region.base + BigInt(region.offsets[i]))} of a tcache struct's size`, address: region.base + BigInt(region.offsets[i]) + 8n, length: bytes.length - 8 });
    }
  });
  // The chunks in a tcache or a fastbin: in use by their next chunk's P bit, their size and link (and a tcache's key).
  for (const t of state.tcaches.tcaches) {
    for (const bin of t.bins) for (const c of bin.chunks) watched.push({ what: `the link of the tcache chunk at ${hex(c.address)}`, address: c.address + 8n, length: 24 });
  }
  for (const b of state.bins) {
    for (const bin of b.fastbins) for (const c of bin.chunks) watched.push({ what: `the link of the fastbin chunk at ${hex(c.address)}`, address: c.address + 8n, length: 16 });
  }
  for (let from = 0; from < watched.length; from += RANGES_PER_READ) {
    const batch = watched.slice(from, from + RANGES_PER_READ);
    const again = readRanges(pid, batch.map((w) => ({ address: w.address, length: BigInt(w.length) })));
    const changed = batch.findIndex((w, k) => again[k].errno !== 0 || !sameBytes(readBytes(a.image.memory, w.address, w.length), again[k].bytes));
    if (changed >= 0) return `${batch[changed].what} changed while the heaps were read: the process used malloc`;
  }
  const links = changedLinks(pid, a);
  if (links !== undefined) return `the links of the free chunk at ${hex(links)} changed while the heaps were read: the process used malloc`;
  // A thread descheduled inside malloc leaves the state half-changed and standing still: its arena's lock is held.
  const locked = a.arenas.find((x) => x.mutex !== 0);
  return locked === undefined ? undefined : `arena ${hex(locked.address)}'s mutex is held: a thread was inside malloc or free`;
}
