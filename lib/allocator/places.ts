// Where each chunk of the walk sits, from the decoded lists: in a thread's
// tcache, a fastbin, the unsorted, a small or a large bin, or top. A chunk
// the walk calls free but no bin lists, and a listed chunk the walk never
// met, are inconsistencies and are reported as such.
//
// The places are a column of codes beside the walk's table, filled from the
// lists (each listed chunk found in the walk by a binary search) and one
// pass over the flag bits; a PlacedChunk object per chunk is made only when
// `chunks` is first read. Counting a million chunks by place then costs a
// pass over two columns, not a million objects.
import { bigintOf, EXACT_LIMIT } from '../exact';
import { hex, plural } from '../format';
import { zeroedBytes } from '../fresh-memory';
import { defineOwn, lazyFields, own } from '../validate';
import { chunkAtOrBefore, chunkSize, FREE_BIT, Offsets } from '../walk/chunk';
import { Arena } from './arenas';
import { binColumns } from './bin-chunks';
import { ArenaBins } from './bins';
import { RegionWalk, stoppedAt } from './heap-walks';
import { ThreadCache } from './tcaches';

export type PlaceKind =
  | 'in-use'
  /** The struct of a thread's tcache: in use, by malloc itself. */
  | 'tcache-struct'
  | 'tcache'
  | 'fastbin'
  | 'unsorted'
  | 'smallbin'
  | 'largebin'
  | 'top'
  /** What sysmalloc wrote at the end of a heap it left (see isFencepost): 16 or 32 bytes at an older thread-arena heap's end, 16 each at a non-contiguous main_arena's [heap]'s. */
  | 'fencepost'
  /** The next chunk says this one is free, but no bin lists it. */
  | 'unlisted';

/** Every place a chunk can be in, in the order views list them; a place's code in RegionPlaceColumns is its index here. */
export const PLACE_KINDS: readonly PlaceKind[] = [
  'in-use', 'tcache-struct', 'tcache', 'fastbin', 'unsorted', 'smallbin', 'largebin', 'top', 'fencepost', 'unlisted',
];
const CODE = Object.fromEntries(PLACE_KINDS.map((p, i) => [p, i])) as Record<PlaceKind, number>;
/** By place code: the places whose chunks a bin lists, and so may carry its index. */
const BINNED = PLACE_KINDS.map((p) => p === 'tcache' || p === 'fastbin' || p === 'smallbin' || p === 'largebin' || p === 'unsorted');

export interface PlacedChunk {
  address: bigint;
  size: number;
  place: PlaceKind;
  /** The bin's index (tcache, fastbin, small and large bins). */
  bin?: number;
  /** tcache chunks and structs: the struct's chunk, and whose it is. */
  tcache?: bigint;
  owner?: ThreadCache['owner'];
  /** The arena's last_remainder: the rest of the last chunk split for a small request (normally also in the unsorted bin). */
  lastRemainder?: true;
}

export interface RegionPlaces {
  arena: bigint;
  kind: RegionWalk['kind'];
  start: bigint;
  end: bigint;
  /** One object per chunk of the walk, made when first read. */
  chunks: PlacedChunk[];
  reason?: string;
}

/** A region's places as columns: `places[i]` is the code (index in PLACE_KINDS) of the walk's chunk i. */
export interface RegionPlaceColumns {
  walk: RegionWalk;
  places: Uint8Array;
  /**
   * 1 + the bin index of each listed chunk that has one (tcache, fastbin,
   * small and large bins; every index is below 128), 0 for the others, by
   * chunk index. In one buffer with `places`: a small typed array comes
   * from this process's malloc, and an experiment that decodes its own heap
   * would meet a second one there, freed whenever V8 collects it (a big one
   * is mapped: fresh-memory.ts). A Map of chunk index to bin cost ~350 ns a
   * set here, most of it its growth: 20 ms of a walk whose small bin held
   * 62,500 chunks.
   */
  bins: Uint8Array;
  /** What else a chunk's place says (tcache, owner, last_remainder), by chunk index; most chunks have none. */
  marks: Map<number, Mark>;
  /** The indices of the `unlisted` chunks, found as they were marked: no pass over every chunk looks for them again. */
  unlisted: number[];
}

type Mark = Pick<PlacedChunk, 'tcache' | 'owner' | 'lastRemainder'>;

/** What chunk `i`'s place says beyond its kind: its bin, then the marks; undefined when nothing. */
export function markOf(columns: RegionPlaceColumns, i: number): Pick<PlacedChunk, 'bin' | 'tcache' | 'owner' | 'lastRemainder'> | undefined {
  // Only a binned chunk has a bin: most chunks of a walk are in use, and skip the lookup.
  const bin = BINNED[columns.places[i]] ? columns.bins[i] - 1 : -1;
  const mark = columns.marks.get(i);
  if (bin < 0) return mark;
  return mark === undefined ? { bin } : { bin, ...mark };
}

export interface Placement {
  regions: RegionPlaces[];
  /** Listed chunks (in a bin or a tcache) that are no chunk of the walk, e.g. inside a region whose walk stopped. */
  strays: { address: bigint; place: PlaceKind; bin?: number; arena: bigint }[];
}

/** A listed chunk no walk holds, as read (a corrupt list can hold any 64-bit value). */
interface Stray {
  address: bigint;
  place: PlaceKind;
  bin: number | undefined;
  arena: bigint;
}

const columnsOf = new WeakMap<RegionPlaces, RegionPlaceColumns>();

/**
 * Whether chunk `i` of a walk is a fencepost glibc wrote, not a chunk it
 * handed out. sysmalloc ends an older thread heap with a size-0 header after
 * one: 16 bytes after the old top it freed, or the old top itself (16 or 32
 * bytes, marked in use) when the old top was under 64 bytes. Where a
 * non-contiguous main_arena's top left [heap], two of 16 end its memory
 * there, or three when its old top had 48 bytes (16 of them left before the
 * pair): at the break, or short of it, where a later sbrk went on or another
 * caller of brk took the rest. No chunk handed out is under 32, and a walk
 * of [heap] takes a 16-byte chunk only as one of those (but for the one it
 * stopped at, stored last).
 */
export function isFencepost(w: RegionWalk, i: number): boolean {
  const { ending, table } = w.walk;
  const size = chunkSize(table, i);
  // A walk that stopped stored the chunk it stopped at last: a 16-byte one there is no fencepost it accepted.
  if (w.kind === 'heap') return size === 16 && !(ending === 'stopped' && i === table.count - 1);
  return ending === 'fencepost' && w.kind === 'arena-heap' && i === table.count - 1 && (size === 16 || size === 32);
}

/** The columns behind a region of a placement placeChunks made. */
export function placeColumns(region: RegionPlaces): RegionPlaceColumns {
  const columns = columnsOf.get(region);
  if (columns === undefined) throw new Error('placeColumns: the region was not made by placeChunks');
  return columns;
}

/** Chunk `i` of a region's columns as an object. */
export function placedChunk(columns: RegionPlaceColumns, i: number): PlacedChunk {
  const { table } = columns.walk.walk;
  const address = bigintOf(Number(columns.walk.start) + table.offsets[i]);
  const size = chunkSize(table, i);
  const place = PLACE_KINDS[columns.places[i]];
  const mark = markOf(columns, i);
  return mark === undefined ? { address, size, place } : { address, size, place, ...mark };
}

/** Classifies every chunk of `walks` by the lists in `bins` and `tcaches`. */
export function placeChunks(
  arenas: readonly Arena[], bins: readonly ArenaBins[], tcaches: readonly ThreadCache[], walks: readonly RegionWalk[],
): Placement {
  const byArena = new Map(arenas.map((a) => [a.address, a]));
  // Pushed, not mapped: map made packed arrays when interpreted and holey
  // ones when optimized, and placeListed was deoptimized at each change.
  const all: RegionPlaceColumns[] = [];
  const indexes: ChunkIndex[] = [];
  for (const w of walks) {
    const { count } = w.walk.table;
    const buffer = zeroedBytes(2 * count);
    all.push({ walk: w, places: buffer.subarray(0, count), bins: buffer.subarray(count), marks: new Map<number, Mark>(), unlisted: [] });
    indexes.push(chunkIndex(w));
  }
  const placing: Placing = { all, indexes, strays: new Map(), far: [] };
  for (const b of bins) {
    placeList(placing, CODE.fastbin, b.fastbins, true, b.arena);
    placeList(placing, CODE.unsorted, b.unsorted, false, b.arena);
    placeList(placing, CODE.smallbin, b.smallbins, true, b.arena);
    placeList(placing, CODE.largebin, b.largebins, true, b.arena);
  }
  for (const t of tcaches) {
    for (const bin of t.bins) for (const c of bin.chunks) placeListed(placing, Number(c.address) < EXACT_LIMIT ? Number(c.address) : c.address, CODE.tcache, bin.index, t.arena, t);
  }
  const { strays, far } = placing;
  const regions = all.map((columns, r): RegionPlaces => {
    const { walk: w, places } = columns;
    const { table, top } = w.walk;
    const { count, bits } = table;
    if (top >= 0) places[top] = CODE.top;
    markUnlisted(places, bits, count, columns.unlisted);
    // Last first: a struct listed twice keeps its last tcache, as a Map built from the list would.
    for (let k = tcaches.length - 1; k >= 0; k--) {
      const t = tcaches[k];
      const i = chunkAt(indexes[r], Number(t.address));
      if (i >= 0 && places[i] === CODE['in-use']) {
        places[i] = CODE['tcache-struct'];
        markChunk(columns, i, { tcache: t.address, owner: t.owner });
      }
    }
    const arena = byArena.get(w.arena);
    // A non-contiguous main_arena's pair may stand anywhere in [heap]: where its sbrk went on after it, chunks follow.
    const from = w.kind === 'heap' && arena?.noncontiguous === true ? 0 : Math.max(0, count - 3);
    for (let i = from; i < count; i++) if (places[i] === CODE['in-use'] && isFencepost(w, i)) places[i] = CODE.fencepost;
    const remainder = arena === undefined ? -1 : chunkAt(indexes[r], Number(arena.lastRemainder));
    if (remainder >= 0) markChunk(columns, remainder, { lastRemainder: true });
    const region = { arena: w.arena, kind: w.kind, start: w.start, end: w.end } as RegionPlaces;
    columnsOf.set(region, columns);
    lazyFields(region, ['chunks'], () => ({ chunks: Array.from({ length: count }, (_, i) => placedChunk(columns, i)) }));
    if (own(w, 'reason') !== undefined) defineOwn(region, 'reason', w.reason);
    return region;
  });
  const listedNowhere = [...strays.values(), ...far].map((l) => ({ address: l.address, place: l.place, ...(l.bin === undefined ? {} : { bin: l.bin }), arena: l.arena }));
  return { regions, strays: listedNowhere };
}

/**
 * What placing the listed chunks works on. The functions that place them
 * are the module's own, not closures made for each placement: V8 holds a
 * function's optimized code only as long as some closure of it lives, and
 * each walk's closures were compiled again, in the background, while the
 * walk ran them unoptimized (--trace-opt over 25 walks: the list loop
 * compiled 42 times, a closure each walk, ~30 ms of compiling a walk with
 * the lookup it called).
 */
interface Placing {
  all: RegionPlaceColumns[];
  indexes: ChunkIndex[];
  /**
   * Listed chunks no walk holds, by address (a number: exact, user space
   * ends at 2^47), each with its last listing; one at or above 2^53 is no
   * chunk of any walk (and no exact number), kept as read in `far`.
   */
  strays: Map<number, Stray>;
  far: Stray[];
}

/** Places every chunk of a kind of bin's lists (the columns: no object per chunk, bin-chunks.ts). */
function placeList(p: Placing, code: number, list: ArenaBins['fastbins'], withIndex: boolean, arena: bigint): void {
  for (const bin of list) {
    const chunks = binColumns(bin);
    for (let i = 0; i < chunks.length; i++) {
      const at = chunks.addressNumber(i);
      placeListed(p, at < EXACT_LIMIT ? at : chunks.address(i), code, withIndex ? bin.index : undefined, arena);
    }
  }
}

/**
 * Places one listed chunk, looked up in every region (they are few) by a
 * binary search: bins before tcaches, so a chunk listed twice keeps its
 * last listing (a tcache's over a bin's). The address is a number below
 * 2^53 (exact; no bigint comparison, a call into the runtime), or a bigint
 * at or above it.
 */
function placeListed(p: Placing, address: number | bigint, code: number, bin: number | undefined, arena: bigint, cache?: ThreadCache): void {
  if (typeof address === 'bigint') {
    p.far.push({ address, place: PLACE_KINDS[code], bin, arena });
    return;
  }
  const { all, indexes } = p;
  let met = false;
  for (let k = 0; k < all.length; k++) {
    const columns = all[k];
    const i = chunkAt(indexes[k], address);
    if (i < 0 || i === columns.walk.walk.top) continue;
    met = true;
    columns.places[i] = code;
    columns.bins[i] = bin === undefined ? 0 : bin + 1;
    if (cache !== undefined) markChunk(columns, i, { tcache: cache.address, owner: cache.owner });
  }
  if (!met) p.strays.set(address, { address: bigintOf(address), place: PLACE_KINDS[code], bin, arena });
}

function markChunk(columns: RegionPlaceColumns, i: number, m: Mark): void {
  columns.marks.set(i, { ...columns.marks.get(i), ...m });
}

// The two loops over every chunk's place are functions of their own, as
// findTcaches' is (tcaches.ts): a small function's optimized code is not
// dropped for a colder line of the function around it (--trace-deopt showed
// placementProblems' so; the placement's loop was split for the same reason).

/** In-use chunks whose next chunk says they are free become unlisted, their indices pushed onto `found`. */
function markUnlisted(places: Uint8Array, bits: Uint8Array, count: number, found: number[]): void {
  const inUse = CODE['in-use'];
  const unlisted = CODE.unlisted;
  for (let i = 0; i < count; i++) {
    if (places[i] === inUse && (bits[i] & FREE_BIT) !== 0) {
      places[i] = unlisted;
      found.push(i);
    }
  }
}

/** The index of the walk's chunk at address `at`, or -1. */
export function indexIn(w: RegionWalk, at: number): number {
  return chunkAt(chunkIndex(w), at);
}

/**
 * A walk's chunk offsets and start read once, for many lookups: placeChunks
 * makes one per region and looks every listed chunk up in each, where it
 * read the table's fields and converted the region's start every time.
 * `near` is the last chunk found, where the next search starts (a list's
 * chunks often lie in address order: a bin's as they were freed).
 */
interface ChunkIndex { start: number; offsets: Offsets; count: number; near: number }

function chunkIndex(w: RegionWalk): ChunkIndex {
  const { offsets, count } = w.walk.table;
  return { start: Number(w.start), offsets, count, near: -1 };
}

function chunkAt(index: ChunkIndex, at: number): number {
  const { start, offsets, count } = index;
  const offset = at - start;
  if (count === 0 || offset < 0 || offset > offsets[count - 1]) return -1;
  const i = chunkAtOrBefore(offsets, count, offset, index.near);
  index.near = i;
  return i >= 0 && offsets[i] === offset ? i : -1;
}

/**
 * A line per inconsistency the placement found: unlisted free chunks and
 * strays. `noncontiguousMain`: main_arena's address when it is
 * non-contiguous; its listed chunks outside every walked region are then
 * where they should be (memory glibc took with mmap and records nowhere,
 * which is not walked), and get one line together, not one each. So do a
 * tcache's (any thread may cache a chunk of main_arena's): every other
 * arena's memory is walked, and the tcache's decode took them only because
 * main_arena's memory is not known (tcaches.ts).
 */
export function placementProblems(p: Placement, noncontiguousMain?: bigint): string[] {
  const out: string[] = [];
  for (const r of p.regions) {
    const columns = placeColumns(r);
    for (const i of columns.unlisted) {
      const c = placedChunk(columns, i);
      out.push(`the chunk at ${hex(c.address)} (${hex(c.size)}) is free by its next chunk's P bit, but no bin of arena ${hex(r.arena)} lists it`);
    }
  }
  const walked = (at: bigint) => p.regions.some((r) => r.start <= at && at < r.end);
  // Where a region's walk stopped (its reason says why), the chunks listed past that point: one line each region.
  const stops = p.regions.flatMap((r) => (own(r, 'reason') === undefined ? [] : [{ r, from: stoppedAt(placeColumns(r).walk), count: 0 }]));
  let outside = 0;
  let cached = 0;
  for (const s of p.strays) {
    const stop = stops.find((x) => x.from <= s.address && s.address < x.r.end);
    if (stop !== undefined) stop.count++;
    else if (noncontiguousMain !== undefined && (s.arena === noncontiguousMain || s.place === 'tcache') && !walked(s.address)) {
      outside++;
      if (s.place === 'tcache') cached++;
    } else out.push(`${hex(s.address)}, listed in ${s.place}${s.bin === undefined ? '' : ` ${s.bin}`}, is no chunk of the walk`);
  }
  for (const { r, from, count } of stops) {
    if (count > 0) out.push(`${count === 1 ? '1 listed chunk lies' : `${count} listed chunks lie`} past ${hex(from)}, where the walk of ${r.kind} ${hex(r.start)} stopped (its reason says why)`);
  }
  if (outside > 0) {
    const by = cached === 0 ? 'main_arena' : cached === outside ? 'tcaches' : `main_arena and by tcaches (${cached} of them)`;
    out.push(`${plural(outside, 'chunk')} listed by ${by} ${outside === 1 ? 'lies' : 'lie'} in main_arena's memory outside [heap] (it is non-contiguous), which is not walked: ` +
      'glibc records nowhere where that memory starts');
  }
  return out;
}
