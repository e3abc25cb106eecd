// One snapshot of this process's allocator: libc's writable data, [heap] up
// to the break and every thread-arena heap, copied inside one native call
// between two mallinfo2() calls and two reads of the break. A snapshot
// taken while another thread changed malloc's state is retaken. The copy's
// steps (planCopy) can also be repeated within a larger plan, one copy after
// each step of interest, each decoded on its own (copiedSnapshot).
import { intersection, mergedRanges, subtractRanges } from '../address-ranges';
import { HeapscopeError, rangeError, typeError } from '../errors';
import { bytes, hex, shortBytes } from '../format';
import { releaseBytes } from '../fresh-memory';
import { HUGE_PAGES_PATH, maps, MemoryRegion, untouchedReadsZero } from '../maps';
import { readMemory } from '../memory';
import { MAX_PLAN_READ, PlanStep, runPlan, runPlanReleasingCopies, StepResult } from '../plan';
import { MINSIZE } from '../size-classes';
import { glibcVersion, Mallinfo, MALLINFO_FIELDS, programBreak } from '../stats';
import { describe, own, readArray, readOptions, toIndex } from '../validate';
import { AllocatorImage, forgetGlobals, locateGlobals } from './image';
import { layoutFor } from './layouts';
import { libcDataRegions } from './libc-data';
import { LibcFile, libcFileOf } from './libc-file';
import { AddressRange } from './locate-input';
import { CopiedRange, copiedMemory, rangeOf, readWord } from './memory-source';
import { offsetOf } from './struct-layout';
import { Arena, decodeArenas, heapMaxSize } from './arenas';
import { decodeBins } from './bins';
import { CopiedSnapshot, madeResidentReason } from './results';

export interface AllocatorSnapshotOptions {
  /** Snapshots to try for a consistent one (default 5, at most 100). */
  attempts?: number;
  /**
   * Malloc and free one 1000-byte block just before the copy (default
   * true): the tcache whose bin then starts with it is the calling thread's.
   * A chunk of that size is freed into the bin first (see PROBE_FILLER).
   */
  probe?: boolean;
  /**
   * Plan steps run in the same native call just before the probe and the
   * copy (see runPlan); their allocations stay live through the copy and
   * are freed right after it. They run again with each retake.
   */
  before?: readonly PlanStep[];
}

export interface AllocatorSnapshot {
  image: AllocatorImage;
  /** The libc file mapped, which global_max_fast's measured offset is cached by. */
  libc: LibcFile;
  /** mallinfo2() just before and just after the copy. */
  mallinfoBefore: Mallinfo;
  mallinfo: Mallinfo;
  programBreak: bigint;
  /** The probe chunk's user pointer, when there was a probe. */
  probe?: bigint;
  /** Results of the `before` steps of the snapshot returned. */
  steps: StepResult[];
  /** Snapshots taken. */
  attempts: number;
  /** Nothing moved during the last one: mallinfo2 and the break stood still, and the arenas' lists and tops agree. */
  consistent: boolean;
  /**
   * The copy was read from a child forked for it (a plan's `freeze`): this
   * process as it was at one instant, every arena's lock held across the
   * fork, whatever its other threads did meanwhile.
   */
  frozen: boolean;
  /** Why the copy was read from this process live instead, when it was: fork() refused, the child unreadable (Yama, non-dumpable), silent for 10 s or ended before it measured, or a plan that asked for no freeze (planCopy's `live`). */
  unfrozen?: string;
  /** Why the last snapshot is not consistent, when it is not. */
  reason?: string;
  /** Why the copy may have made pages never touched resident, when it may have (see CopiedSnapshot). */
  madeResident?: string;
}

const PROBE_REQUEST = 1000;
/**
 * A block shrunk in place to PROBE_REQUEST by realloc: MINSIZE bytes more,
 * so its chunk is split to exactly the probe's size, whatever chunk
 * malloc handed out. Freed before the probe, it leaves the calling thread's
 * bin holding at least one chunk, so the probe is taken from the bin and
 * freed back to its head. Without it, a probe that finds the bin empty
 * makes glibc refill the bin from free chunks of that size (tcache
 * stashing, up to mp_.tcache_count), and the probe, freed into the full
 * bin, goes to the arena: no tcache is then the calling thread's.
 */
const PROBE_FILLER = PROBE_REQUEST + MINSIZE;

/** `options.attempts` of a call that takes a snapshot: 1 to 100, `fallback` (5 in this process) when absent. */
export function snapshotAttempts(value: unknown, fallback = 5): number {
  const attempts = toIndex(value ?? fallback, 'options.attempts', 100);
  if (attempts < 1) throw rangeError('options.attempts must be at least 1');
  return attempts;
}

/**
 * Copies the allocator's memory of this process. Retakes (up to
 * `attempts`) while the copy is torn; the last one is returned with
 * `consistent: false` and the reason. Throws ERR_ALLOCATOR_NOT_FOUND when
 * no libc is mapped. `released`: the caller gives the copies back itself
 * (releaseCopies), whatever happens (runPlanReleasingCopies).
 */
export function takeAllocatorSnapshot(options: AllocatorSnapshotOptions = {}, { released = false } = {}): AllocatorSnapshot {
  const read = readOptions(options, 'options', ['attempts', 'probe', 'before']);
  const attempts = snapshotAttempts(read.attempts);
  const probe = read.probe ?? true;
  if (typeof probe !== 'boolean') throw typeError(`options.probe must be a boolean, got ${describe(probe)}`);
  const before = readArray(read.before ?? [], 'options.before') as PlanStep[];
  let taken: CopiedFrame | undefined;
  let mainRegions: MemoryRegion[] = [];
  let heaps: MemoryRegion[] = [];
  try {
    for (let attempt = 1; attempt <= attempts; attempt++) {
      // `before` steps can move the break: a retake gives [heap]'s read room from where the last copy saw it.
      // Without them, a retake measures the break again: the last attempt's copies, handed out
      // after it, may have moved it (from main_arena's top, once the mmap threshold has risen).
      const torn = taken;
      // A retake replaces the torn copy: it is given back first (the last one is returned).
      if (torn !== undefined) releaseCopies(torn.snapshot);
      taken = undefined;
      taken = takeOnce(before, probe, attempt, before.length > 0 ? torn?.breakSeen : undefined, mainRegions, heaps, released);
      if (own(taken, 'reason') === undefined) return taken.snapshot;
      if (taken.final) break;
      const next = retakeSources(own(taken, 'reason')!, taken.snapshot.image, maps(), mainRegions, heaps, mainTopNow(taken.snapshot.image));
      if ('final' in next) return { ...taken.snapshot, consistent: false, reason: next.final };
      ({ mainRegions, heaps } = next);
    }
  } catch (error) {
    // No snapshot is returned: a caller that gives the copies back itself never gets them.
    if (released && taken !== undefined) releaseCopies(taken.snapshot);
    throw error;
  }
  return { ...taken!.snapshot, consistent: false, reason: taken!.reason };
}

/**
 * Gives back the memory of a snapshot's copies now, for a caller done with
 * every byte of them (walkHeap once its result is built; a retake, of the
 * copy it replaces): their Buffers read as empty from then on. Node frees
 * them only from its event loop otherwise, and a loop that walked a big
 * heap ten times without yielding held over a GiB of copies. This process's
 * snapshots and another's (remote/snapshot.ts) alike.
 */
export function releaseCopies(snapshot: Pick<CopiedSnapshot, 'image'>): void {
  const { ranges, held } = snapshot.image.memory;
  releaseBytes([...ranges.map((r) => r.bytes), ...(held ?? [])]);
}

/**
 * What the next copy of a torn one reads besides the map's own regions:
 * `mainRegions` and `heaps` with what the torn copy's image leads to in
 * `regions` (the map now). `final` instead, the reason to give, when the
 * copy was torn only by a non-contiguous main_arena's list that leads where
 * no retake would copy more: a corrupt list, not a moment missed. Pure:
 * this process's retakes and another's use it.
 */
export function retakeSources(
  reason: string, image: AllocatorImage, regions: readonly MemoryRegion[], mainRegions: MemoryRegion[], heaps: MemoryRegion[], topNow?: bigint,
): { mainRegions: MemoryRegion[]; heaps: MemoryRegion[] } | { final: string } {
  const outside = mergedRanges(mainRegions, outsideMain(image, regions, topNow));
  const more = withHeaps(heaps, missedHeaps(image, regions));
  if (reason.startsWith(NONCONTIGUOUS_TORN) && !widens(mainRegions, outside) && more.length === heaps.length) {
    return { final: `${reason}, and no private anonymous read-write mapping the copy has not read holds it` };
  }
  return { mainRegions: outside, heaps: more };
}

/**
 * main_arena's top now, read in this process, where the copy locates
 * main_arena: the copy's own mallocs since (the decode's columns) may have
 * moved it on to memory glibc mapped meanwhile, which a retake that knew
 * only the copy's top would chase attempt after attempt (under
 * glibc.malloc.hugetlb, where main_arena maps all its memory a huge page
 * at a time, five attempts of a node with five workers ran out so).
 */
function mainTopNow(image: AllocatorImage): bigint | undefined {
  const globals = locateGlobals(image);
  if (!globals.mainArena.found) return undefined;
  try {
    return readMemory(globals.mainArena.address + BigInt(offsetOf(image.layout.mallocState, 'top')), 8).readBigUInt64LE(0);
  } catch {
    return undefined;
  }
}

/** The label of a copied range outside [heap] that a non-contiguous main_arena's chunks or top led the copy to (outsideMain). */
export const OUTSIDE_HEAP_LABEL = "main_arena's memory outside [heap]";

/** The copied ranges of `image` a non-contiguous main_arena led the copy to, outside [heap]. */
export function outsideHeapOf(image: AllocatorImage): { start: bigint; end: bigint }[] {
  return image.memory.ranges.filter((r) => r.label === OUTSIDE_HEAP_LABEL).map((r) => ({ start: r.base, end: r.base + BigInt(r.bytes.length) }));
}

/** How structureTornReason begins when a non-contiguous main_arena's bins leave the copy. */
const NONCONTIGUOUS_TORN = 'main_arena is non-contiguous (glibc took memory with mmap)';

/** Whether `after` (mergedRanges of `before` and more) covers anything `before` did not. */
export function widens(before: readonly { start: bigint; end: bigint }[], after: readonly { start: bigint; end: bigint }[]): boolean {
  return after.some((a) => !before.some((b) => b.start <= a.start && a.end <= b.end));
}

/** Bytes of a non-contiguous main_arena's top region copied at most: more than any top chunk here. */
const MAX_TOP_COPY = 64n << 20n;
const PAGE = 4096n;

/** Where a non-contiguous main_arena's bins leave the copied memory (Bin.uncopied): the copy missed memory glibc took with mmap. */
function uncopiedMain(image: AllocatorImage, mainArena: bigint): { main?: Arena; uncopied: bigint[] } {
  const globals = locateGlobals(image);
  const list = decodeArenas(image, mainArena, globals.mallocPar.found ? globals.mallocPar.value : undefined);
  const i = list.arenas.findIndex((a) => a.kind === 'main');
  const main = list.arenas[i];
  if (main === undefined || !main.noncontiguous) return { uncopied: [] };
  const b = decodeBins(image, main, list.states[i]);
  const uncopied = [...b.fastbins, ...b.unsorted, ...b.smallbins, ...b.largebins].flatMap((bin) => own(bin, 'uncopied') ?? []);
  return { main, uncopied };
}

/** Bytes one retake copies around the chunks a non-contiguous main_arena's bins led out of the copy, at most (with MAX_TOP_COPY for its top). */
const MAX_OUTSIDE_COPY = 1n << 30n;

/**
 * A line glibc's mmap for main_arena could be: private anonymous read-write
 * memory, huge pages too (glibc.malloc.hugetlb maps all of main_arena's
 * memory so); a forged pointer elsewhere is not followed. A library's `bss`
 * counts: the kernel merges an mmap that lands right above it into its line.
 */
const mainMmapLine = (r: MemoryRegion) => (r.kind === 'anonymous' || r.kind === 'bss') && r.perms === 'rw-p';

/**
 * A non-contiguous main_arena keeps memory outside [heap]: regions glibc
 * took with mmap once sbrk failed (or all of it, under
 * glibc.malloc.hugetlb), listed nowhere. The parts of `regions`
 * (the process's map) that hold what the copy missed of it: its top, from
 * the top on (64 MiB at most), and around each chunk where one of its bins
 * left the copied memory, as far as its system_mem reaches on either side
 * (the next copy reads them too, and its bins may lead further). Only
 * private anonymous read-write lines are followed, and the chunks' ranges
 * of one retake together stop at 1 GiB: a corrupt or forged list cannot
 * make a copy read a file's pages, nor more than that. Pure: this
 * process's copies and another's use it.
 */
export function outsideMain(image: AllocatorImage, regions: readonly MemoryRegion[], topNow?: bigint): MemoryRegion[] {
  const globals = locateGlobals(image);
  if (!globals.mainArena.found) return [];
  const { main, uncopied } = uncopiedMain(image, globals.mainArena.address);
  if (main === undefined) return [];
  const holding = (p: bigint) => regions.find((r) => r.start <= p && p < r.end && mainMmapLine(r));
  const part = (r: MemoryRegion, start: bigint, end: bigint): MemoryRegion => ({ ...r, start, end, size: Number(end - start) });
  const out: MemoryRegion[] = [];
  // Its top as the copy has it (where the copy missed it), and as it is now, where that was read and differs.
  const tops = [...(main.top.size === undefined ? [main.top.address] : []), ...(topNow !== undefined && topNow !== main.top.address ? [topNow] : [])];
  for (const at of tops) {
    const top = holding(at);
    if (top !== undefined) out.push(part(top, at, top.end - at > MAX_TOP_COPY ? at + MAX_TOP_COPY : top.end));
  }
  let budget = MAX_OUTSIDE_COPY;
  for (const p of uncopied) {
    const r = holding(p);
    if (r === undefined || budget <= 0n) continue;
    const reach = main.systemMem < MAX_OUTSIDE_COPY / 2n ? main.systemMem : MAX_OUTSIDE_COPY / 2n;
    const from = (p - reach) & ~(PAGE - 1n);
    const to = (p + reach + PAGE - 1n) & ~(PAGE - 1n);
    const range = part(r, from > r.start ? from : r.start, to < r.end ? to : r.end);
    budget -= range.end - range.start;
    out.push(range);
  }
  return out;
}

/**
 * `outside` (ranges outsideMain chose from earlier maps) as `regions`, the
 * map now, shows them: the parts of each that private anonymous read-write
 * lines hold (a part no such line holds is dropped: the memory went, and it
 * may have been a neighbour's), less what the copy reads anyway
 * (`taken`: libc's data, [heap], the arena heaps, which can share a line
 * with main_arena's memory), so no byte is copied twice. Pure.
 */
export function outsideNow(
  outside: readonly MemoryRegion[], regions: readonly MemoryRegion[], taken: readonly { start: bigint; end: bigint }[],
): MemoryRegion[] {
  const out: MemoryRegion[] = [];
  for (const range of outside) {
    for (const line of regions.filter((r) => mainMmapLine(r))) {
      const clipped = intersection(range, line);
      if (clipped === undefined) continue;
      for (const p of subtractRanges([clipped], taken)) out.push({ ...line, start: p.start, end: p.end, size: Number(p.end - p.start) });
    }
  }
  return out;
}

/**
 * Thread-arena heaps the copy missed because the map did not show them as
 * such: glibc's heap shares its map line with a mapping right below it of
 * the same kind (the kernel merges them; a heap used to its last byte and
 * the next heap right after it, too). The arena list led to them; each
 * region of `regions` holding one is copied from the heap's aligned start,
 * at most heap_max_size of it, the next time. Pure: this process's copies
 * and another's use it.
 */
export function missedHeaps(image: AllocatorImage, regions: readonly MemoryRegion[]): MemoryRegion[] {
  const globals = locateGlobals(image);
  if (!globals.mainArena.found) return [];
  const par = globals.mallocPar.found ? globals.mallocPar.value : undefined;
  const list = decodeArenas(image, globals.mainArena.address, par);
  const max = heapMaxSize(image.layout, par);
  const unread = [list.unread, ...list.arenas.map((a) => a.heapsUnread)].filter((a): a is bigint => a !== undefined);
  const led = unread.flatMap((address) => {
    const start = address & ~(max - 1n);
    // Private anonymous read-write memory only, as main_arena's (a heap merged into a library's bss line too): a corrupt list leads nowhere else.
    const i = regions.findIndex((r) => r.start <= start && start < r.end && (mainMmapLine(r) || (r.kind === 'arena-heap' && r.perms === 'rw-p')));
    return i < 0 ? [] : [{ line: regions[i], heap: heapRead(regions, i, start, max) }];
  });
  // A heap the map calls none (four huge pages, 2.35 to 2.41 under
  // glibc.malloc.hugetlb; of huge pages in several lines; merged with a
  // mapping right below it): once the list
  // leads to one, every line shaped like one is copied too, so that one
  // retake finds them all, not one arena a retake (a node of five arenas ran
  // out of retakes).
  return withHeaps(led.map((l) => l.heap), led.some((l) => l.line.kind !== 'arena-heap') ? shapedHeaps(regions, max) : []);
}

/**
 * A thread heap's read from `start` in regions[i]: over the private
 * anonymous read-write lines right above it within heap_max_size (`max`),
 * since huge pages' lines do not merge as glibc makes more of a heap
 * writable.
 */
function heapRead(regions: readonly MemoryRegion[], i: number, start: bigint, max: bigint): MemoryRegion {
  const heapLine = (r: MemoryRegion | undefined) => r !== undefined && (r.kind === 'anonymous' || r.kind === 'arena-heap') && r.perms === 'rw-p';
  let j = i;
  while (regions[j + 1]?.start === regions[j].end && regions[j + 1].end <= start + max && heapLine(regions[j + 1])) j++;
  const end = regions[j].end - start > max ? start + max : regions[j].end;
  return { ...regions[i], start, end, size: Number(end - start), kind: 'arena-heap' };
}

/**
 * The reads of the thread heaps of `max` bytes (heap_max_size) `regions`
 * could hold, each from where one could begin to the end of its read-write
 * lines, shaped as glibc lays one out: anonymous read-write from a
 * `max`-aligned address (a line's start, or the last boundary inside a line
 * the kernel merged with a mapping of the same kind right below it: from an
 * earlier one the read-write part would run past its heap), in one line or
 * several, then anonymous lines of no access up to the next such boundary
 * (the last may run a guard page past it, at most MERGED_GUARD), or
 * read-write to it from a line's start. A heap used to its last byte and
 * merged with a mapping below it or the next heap's read-write part above
 * shows no such shape: the arena list leads there.
 * Pure.
 */
export function shapedHeaps(regions: readonly MemoryRegion[], max: bigint): MemoryRegion[] {
  const out: MemoryRegion[] = [];
  const tail = (r: MemoryRegion) => r.perms === '---p' && r.kind === 'reserved' && (r.path === '' || r.path === HUGE_PAGES_PATH);
  regions.forEach((r, i) => {
    if (r.kind !== 'anonymous' || r.perms !== 'rw-p') return;
    const start = ((r.end - 1n) / max) * max;
    if (start < r.start) return;
    const limit = start + max;
    const next = (j: number, is: (x: MemoryRegion) => boolean) => regions[j + 1]?.start === regions[j].end && is(regions[j + 1]);
    let j = i;
    while (regions[j].end < limit && next(j, (x) => x.kind === 'anonymous' && x.perms === 'rw-p')) j++;
    const read = regions[j].end;
    while (regions[j].end < limit && next(j, tail)) j++;
    const end = regions[j].end;
    // Read-write to the boundary, no tail: only from a line's start (any long anonymous line ends on some boundary).
    const whole = end === limit && (tail(regions[j]) || start === r.start);
    if (whole || (end > limit && end - limit <= MERGED_GUARD && tail(regions[j]))) {
      out.push({ ...r, start, end: read, size: Number(read - start), kind: 'arena-heap' });
    }
  });
  return out;
}

/** The most a heap's reserved tail may run past its boundary, merged with a guard page above: a reservation going on further (V8's, a JIT's) is no heap. */
const MERGED_GUARD = 64n << 10n;

/** `heaps` and those of `more` that start where none of them does. */
export function withHeaps(heaps: readonly MemoryRegion[], more: readonly MemoryRegion[]): MemoryRegion[] {
  return [...heaps, ...more.filter((m) => !heaps.some((h) => h.start === m.start))];
}

/** What a copy of the allocator reads, chosen from the process map before the plan that copies it. */
export interface CopySources {
  layout: ReturnType<typeof layoutFor>;
  libcFile: LibcFile;
  libc: MemoryRegion[];
  heap?: MemoryRegion;
  /** Where the copy of [heap] ends: the program break when the sources were chosen. */
  heapEnd?: bigint;
  arenaHeaps: MemoryRegion[];
  /** Where each of `arenaHeaps`' copies ends: its end, or with room, arenaReadEnd. */
  arenaHeapEnds: bigint[];
  /** A non-contiguous main_arena's memory outside [heap] (see outsideMain). */
  mainRegions: MemoryRegion[];
}

/**
 * The regions one copy reads, from the map now: libc's data, [heap] up to
 * `breakSeen` (or the break now) and every thread-arena heap. Throws
 * ERR_ALLOCATOR_NOT_FOUND when no libc is mapped.
 */
export function copySources(breakSeen?: bigint, mainRegions: readonly MemoryRegion[] = [], missed: readonly MemoryRegion[] = [], room = false): CopySources {
  const regions = maps();
  const libc = libcDataRegions(regions);
  const libcFile = libcFileOf(regions);
  if (libc.length === 0 || libcFile === undefined) throw new HeapscopeError('ERR_ALLOCATOR_NOT_FOUND', 'no libc data mapping in /proc/self/maps');
  const heap = regions.find((r) => r.kind === 'heap');
  const end = heap === undefined ? undefined : breakSeen ?? programBreak();
  const copyHeap = heap !== undefined && end! > heap.start;
  const arenaHeaps = withHeaps(regions.filter((r) => r.kind === 'arena-heap'), missed);
  return {
    layout: layoutFor(glibcVersion()), libcFile, libc, arenaHeaps, arenaHeapEnds: arenaHeaps.map((r) => (room ? arenaReadEnd(r, regions) : r.end)),
    mainRegions: outsideNow(mainRegions, regions, [...libc, ...(heap === undefined ? [] : [heap]), ...arenaHeaps]),
    ...(copyHeap ? { heap, heapEnd: end } : {}),
  };
}

/** The steps of one copy in a plan: a freeze, mallinfo and the break, the reads, the break and mallinfo again, the thaw. */
export interface PlannedCopy {
  sources: CopySources;
  /** The freeze's step; undefined when the copy was planned without one (read live). */
  freeze: number | undefined;
  m0: number;
  b0: number;
  reads: { region: MemoryRegion; label: string; step: number }[];
  b1: number;
  m1: number;
}

/**
 * Room the [heap] read has beyond the break when the sources were chosen:
 * the plan's own steps before the copy (and a retake's) can grow the heap,
 * and the read stops at the break as it is then. Never-touched pages of
 * the room cost no memory.
 */
const HEAP_ROOM = 64n << 20n;

/**
 * Room a thread-arena heap's read has past the part the map showed
 * writable, within the heap's reservation, in takeAllocatorSnapshot's
 * copies: its thread may grow it (glibc makes more of the reservation
 * writable) between the map's read and the copy, and under a busy V8 a
 * walk in three or four was torn so and taken again. Each such read stops
 * where the heap's own heap_info says its writable part ends (a read's
 * `lengthAt`: mprotect_size, as the frozen child has it), never short of
 * what the map showed (its `atLeast`: a corrupt header cannot cut the copy),
 * so the copy is as long as a map read at the fork would have made it.
 * Before reads stopped
 * there, room was given only in a retake: with room in every copy, the bins
 * experiment's test chunks (carved on the word of a snapshot taken just
 * before its plan) missed their planned neighbours in 6 of 10 runs, none in
 * 10 without; why was not measured. The bins experiment's own copies (one
 * after each stage) still have none.
 */
const ARENA_ROOM = 8n << 20n;

/** Where a copy of the thread-arena heap `heap` ends: ARENA_ROOM into the reservation right above it, if any. */
function arenaReadEnd(heap: MemoryRegion, regions: readonly MemoryRegion[]): bigint {
  const tail = regions.find((r) => r.start === heap.end);
  if (tail === undefined || tail.kind !== 'arena-reserved') return heap.end;
  return tail.end - heap.end > ARENA_ROOM ? heap.end + ARENA_ROOM : tail.end;
}

/** A plan step copying `length` bytes of `region` from its start. */
export function readStep(region: MemoryRegion, length: bigint): PlanStep {
  // Private anonymous memory: its pages never touched are left zero, not made resident by the copy.
  return { op: 'read', address: region.start, length, ...(untouchedReadsZero(region) ? { anonymous: true } : {}) };
}

/**
 * Appends one copy of `sources` to `steps`. A plan may hold several (one
 * after each step of interest): each is decoded on its own by copiedSnapshot.
 * `live` reads this process as it runs, with no freeze: only for a process
 * whose other threads do not call malloc (an experiment's child, whose V8
 * runs single-threaded), where a fork per copy buys nothing. The break and
 * mallinfo2() around the reads still tell a torn copy.
 */
export function planCopy(steps: PlanStep[], sources: CopySources, live = false): PlannedCopy {
  const push = (step: PlanStep) => steps.push(step) - 1;
  // The copy reads a child forked for it: V8's helper threads free into
  // main_arena at any moment, and a copy of a big heap read live was torn by
  // them in most attempts (a walk of a million chunks retook it 5 times).
  const freeze = live ? undefined : push({ op: 'freeze' });
  const m0 = push({ op: 'mallinfo' });
  const b0 = push({ op: 'break' });
  const reads: PlannedCopy['reads'] = [];
  const read = (region: MemoryRegion, label: string, length: bigint, toBreak = false, more: { lengthAt?: number; atLeast?: bigint } = {}) => {
    reads.push({ region, label, step: push({ ...readStep(region, length), ...(toBreak ? { toBreak } : {}), ...more }) });
  };
  // [heap] first: a frozen child measures mallinfo2 meanwhile, and only a read to the break may run before it has.
  // One read step holds at most MAX_PLAN_READ bytes: a bigger [heap] is copied that far, and a retake cannot do better.
  if (sources.heap !== undefined) {
    const length = sources.heapEnd! - sources.heap.start + HEAP_ROOM;
    read(sources.heap, '[heap]', length > MAX_PLAN_READ ? MAX_PLAN_READ : length, true);
  }
  for (const r of sources.libc) read(r, 'libc data', BigInt(r.size));
  // Read live, no other thread grows a heap meanwhile (see `live`): no room.
  // Frozen, each heap is copied as far as its heap_info says it is writable, never less than the map showed.
  const lengthAt = offsetOf(sources.layout.heapInfo, 'mprotect_size');
  sources.arenaHeaps.forEach((r, k) => read(r, 'arena heap', (live ? r.end : sources.arenaHeapEnds[k]) - r.start, false, live ? {} : { lengthAt, atLeast: r.end - r.start }));
  for (const r of sources.mainRegions) read(r, OUTSIDE_HEAP_LABEL, BigInt(r.size));
  const b1 = push({ op: 'break' });
  const m1 = push({ op: 'mallinfo' });
  if (!live) push({ op: 'thaw' });
  return { sources, freeze, m0, b0, reads, b1, m1 };
}

/** One copy of a plan that ran, as a snapshot; `reason` says why it is torn, when it is. */
export interface CopiedFrame {
  snapshot: AllocatorSnapshot;
  reason?: string;
  /** The break just after the copy. */
  breakSeen: bigint;
  /** Torn in a way no retake cures: [heap] is bigger than one copy holds. */
  final?: boolean;
}

/**
 * The snapshot a planned copy made, from the plan's results. `probe` is the
 * user pointer of a chunk freed into the calling thread's tcache before it,
 * `steps` the results the snapshot reports as its `before` steps.
 */
export function copiedSnapshot(
  copy: PlannedCopy, results: readonly StepResult[], extra: { probe?: bigint; steps?: StepResult[]; attempt?: number } = {},
): CopiedFrame {
  const { sources, reads } = copy;
  const failed = reads.find((r) => results[r.step].status !== 'ok');
  const ranges: CopiedRange[] = reads.filter((r) => results[r.step].status === 'ok')
    .map((r) => ({ base: r.region.start, bytes: results[r.step].bytes!, label: r.label }));
  const breakAfter = results[copy.b1].programBreak!;
  const freeze = copy.freeze === undefined ? undefined : results[copy.freeze];
  const frozen = freeze?.status === 'ok';
  // A page read from a frozen child becomes resident in the child, which ends after the copy: this process's pages stay as they were.
  const unread = frozen ? undefined : reads.map((r) => results[r.step].pagemapErrno).find((e) => e !== undefined);
  // [heap] was read up to the break as it was then.
  const heapRead = ranges.find((r) => r.label === '[heap]');
  const heapEnd = heapRead === undefined ? sources.heapEnd : heapRead.base + BigInt(heapRead.bytes.length);
  const image: AllocatorImage = {
    layout: sources.layout, memory: copiedMemory(ranges), libcData: sources.libc.map((r) => ({ start: r.start, end: r.end })),
    ...(sources.heap !== undefined ? { heap: { start: sources.heap.start, end: heapEnd! } } : {}),
  };
  const snapshot: AllocatorSnapshot = {
    image, libc: sources.libcFile, mallinfoBefore: results[copy.m0].mallinfo!, mallinfo: results[copy.m1].mallinfo!, programBreak: breakAfter,
    ...(extra.probe === undefined ? {} : { probe: extra.probe }), steps: extra.steps ?? [], attempts: extra.attempt ?? 1, consistent: true,
    frozen, ...(frozen ? {} : { unfrozen: unfrozenReason(freeze) }),
    ...(unread === undefined ? {} : { madeResident: madeResidentReason('/proc/self/pagemap', unread) }),
  };
  const heapLength = sources.heap === undefined ? 0n : sources.heapEnd! - sources.heap.start;
  const short = heapLength > MAX_PLAN_READ;
  const reason = failed !== undefined
    ? `reading ${failed.label} at ${hex(failed.region.start)} failed (errno ${results[failed.step].errno}): it changed since the map was read`
    : short ? `[heap] is ${bytes(heapLength)}; one copy holds at most its first ${shortBytes(MAX_PLAN_READ)}, the most one Buffer holds in Node 20`
      : tornReason(snapshot, { copiedTo: heapRead === undefined ? undefined : heapEnd, before: results[copy.b0].programBreak!, after: breakAfter }, sources.arenaHeaps);
  if (reason === undefined) return { snapshot, breakSeen: breakAfter };
  return { snapshot: { ...snapshot, consistent: false, reason }, reason, breakSeen: breakAfter, ...(short ? { final: true } : {}) };
}

/** Why a copy was read from this process as it ran: its plan asked for no freeze, or the freeze failed. */
function unfrozenReason(freeze: StepResult | undefined): string {
  return freeze === undefined
    ? 'its plan asked for no freeze: the copy was read from this process as it ran'
    : `no frozen child to copy from (errno ${freeze.errno}: fork() refused, reading the child refused, or the child ended before it measured mallinfo2): the copy was read from this process as it ran`;
}

function takeOnce(
  before: readonly PlanStep[], probe: boolean, attempt: number, breakSeen: bigint | undefined, mainRegions: readonly MemoryRegion[], heaps: readonly MemoryRegion[],
  released: boolean,
): CopiedFrame {
  // Room for each thread heap's growth before the fork, its copy stopped at its heap_info's mprotect_size (see ARENA_ROOM).
  const sources = copySources(breakSeen, mainRegions, heaps, true);
  const steps: PlanStep[] = [...before];
  const push = (step: PlanStep) => steps.push(step) - 1;
  let probeAt = -1;
  if (probe) {
    const filler = push({ op: 'malloc', size: PROBE_FILLER });
    push({ op: 'free', step: push({ op: 'realloc', step: filler, size: PROBE_REQUEST }) });
    probeAt = push({ op: 'malloc', size: PROBE_REQUEST });
    push({ op: 'free', step: probeAt });
  }
  const copy = planCopy(steps, sources);
  // The copy's reads follow the `before` steps (whose reads are the caller's).
  const { steps: results } = released ? runPlanReleasingCopies(steps, before.length) : runPlan(steps);
  try {
    const frame = copiedSnapshot(copy, results, {
      ...(probe ? { probe: results[probeAt].address! } : {}), steps: results.slice(0, before.length), attempt,
    });
    if (frame.snapshot.frozen) restoreThreadFields(frame.snapshot.image);
    return frame;
  } catch (error) {
    // Given back here, as its caller would have once done with it.
    if (released) releaseBytes(copy.reads.flatMap((r) => results[r.step].bytes ?? []));
    throw error;
  }
}

/**
 * glibc's fork rewrites two words of every arena in the child
 * (__malloc_fork_unlock_child: `next_free`, as it rebuilds the free list,
 * and `attached_threads`, 1 for the forking thread's arena and 0 for the
 * rest). A frozen copy takes those two words of each arena from this
 * process right after the copy: they change only when a thread picks an
 * arena or ends. An arena this process no longer has keeps the child's.
 */
function restoreThreadFields(image: AllocatorImage): void {
  const globals = locateGlobals(image);
  if (!globals.mainArena.found) return;
  const at = BigInt(offsetOf(image.layout.mallocState, 'next_free'));
  const arenas = decodeArenas(image, globals.mainArena.address, globals.mallocPar.found ? globals.mallocPar.value : undefined).arenas.map((a) => a.address + at);
  if (arenas.length === 0) return;
  const { steps } = runPlan(arenas.map((address) => ({ op: 'read', address, length: 16 })));
  arenas.forEach((address, i) => {
    const range = rangeOf(image.memory, address);
    const bytes = steps[i].bytes;
    if (steps[i].status === 'ok' && bytes !== undefined && range !== undefined && address + 16n <= range.base + BigInt(range.bytes.length)) {
      range.bytes.set(bytes, Number(address - range.base));
    }
  });
  // The torn check located main_arena in the copy as the child had it.
  forgetGlobals(image);
}

/**
 * Why a copy is torn, or undefined: the checks a retake can cure. Pure:
 * `breaks` are the program break just before and after the copy and where
 * the copy of [heap] ends (undefined without [heap]); `arenaHeaps` the
 * arena-heap regions copied.
 */
export function tornReason(
  s: AllocatorSnapshot, breaks: { copiedTo?: bigint; before: bigint; after: bigint }, arenaHeaps: readonly AddressRange[],
): string | undefined {
  const { copiedTo, before, after } = breaks;
  if (before !== after) return `the program break moved during the copy (${hex(before)} → ${hex(after)})`;
  if (copiedTo !== undefined && copiedTo < before) {
    return `[heap] grew to the break ${hex(before)}, past the ${hex(copiedTo)} the copy had room for`;
  }
  if (copiedTo !== undefined && copiedTo !== before) return `the copy of [heap] ends at ${hex(copiedTo)}, not at the break ${hex(before)}`;
  const changed = MALLINFO_FIELDS.filter((f) => s.mallinfoBefore[f] !== s.mallinfo[f]);
  if (changed.length > 0) return `mallinfo2() changed during the copy (${changed.join(', ')}): another thread used malloc`;
  return structureTornReason(s.image, arenaHeaps);
}

/**
 * Why the copied structures cannot be one moment's, or undefined: the arena
 * list closes, each top ends its heap ([heap]'s at `image.heap.end`) and no
 * copied heap belongs to an arena missing from the list. Pure; `arenaHeaps`
 * are the arena-heap regions copied. Any process's copy is checked with it.
 * `room: false`: the heaps were not copied whole but walked up to their
 * used part, read where the map showed them (a header copy), so whether a
 * copy had room for them is not asked.
 */
export function structureTornReason(image: AllocatorImage, arenaHeaps: readonly AddressRange[], room = true): string | undefined {
  const globals = locateGlobals(image);
  if (!globals.mainArena.found) return `main_arena was not found: ${globals.mainArena.reason}`;
  const par = globals.mallocPar.found ? globals.mallocPar.value : undefined;
  const list = decodeArenas(image, globals.mainArena.address, par);
  if (!list.complete) return `the arena list: ${list.reason}`;
  for (const a of list.arenas) {
    if (a.heapsReason !== undefined) return `arena ${hex(a.address)}: ${a.heapsReason}`;
    // A heap is copied as far as the map showed it writable before the copy: one that grew since
    // (another thread's malloc) is copied short of its used part, though it stood still during the copy.
    for (const h of room ? a.heaps : []) {
      const copy = image.memory.ranges.find((r) => r.base <= h.address && h.address < r.base + BigInt(r.bytes.length));
      const copiedTo = copy === undefined ? h.address : copy.base + BigInt(copy.bytes.length);
      if (copiedTo < h.address + h.size) {
        return `arena ${hex(a.address)}'s heap at ${hex(h.address)} grew to ${hex(h.address + h.size)}, past the ${hex(copiedTo)} the copy had room for`;
      }
    }
    if (a.top.size === undefined) return `arena ${hex(a.address)}'s top: ${a.top.reason}`;
    const topEnd = a.top.address + a.top.size;
    if (a.kind === 'main' && image.heap !== undefined && !a.noncontiguous && topEnd !== image.heap.end) {
      return `main_arena's top ends at ${hex(topEnd)}, not at the break ${hex(image.heap.end)}`;
    }
    if (a.kind === 'main' && a.noncontiguous) {
      const [missed] = uncopiedMain(image, a.address).uncopied;
      if (missed !== undefined) return `${NONCONTIGUOUS_TORN}, and its bins reach ${hex(missed)}, which the copy missed`;
    }
    const newest = a.heaps[0];
    if (a.kind === 'thread' && (newest === undefined || topEnd !== newest.address + newest.size)) {
      return `arena ${hex(a.address)}'s top ends at ${hex(topEnd)}, not where its newest heap's used part ends`;
    }
  }
  // An arena created during the copy: a heap that starts with a new arena's heap_info.
  const known = new Set(list.arenas.map((a) => a.address));
  const infoSize = BigInt(image.layout.heapInfo.size);
  const fresh = arenaHeaps.find((r) => {
    const word = readWord(image.memory, r.start);
    return word === r.start + infoSize && !known.has(word);
  });
  if (fresh !== undefined) return `the arena at ${hex(fresh.start + infoSize)} is not on the list that main_arena starts`;
  return undefined;
}

