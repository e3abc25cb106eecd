// Where each chunk of the walk sits, from the decoded lists: in a thread's
// tcache, a fastbin, the unsorted, a small or a large bin, or top. A chunk
// the walk calls free but no bin lists, and a listed chunk the walk never
// met, are inconsistencies and are reported as such.
import { bigintOf } from '../exact';
import { hex } from '../format';
import { FREE_BIT } from '../walk/chunk';
import { Arena } from './arenas';
import { ArenaBins } from './bins';
import { RegionWalk } from './heap-walks';
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
  /** The 16 bytes that end an older thread-arena heap, or either of the two that end a non-contiguous main_arena's [heap]. */
  | 'fencepost'
  /** The next chunk says this one is free, but no bin lists it. */
  | 'unlisted';

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
  chunks: PlacedChunk[];
  reason?: string;
}

export interface Placement {
  regions: RegionPlaces[];
  /** Listed chunks (in a bin or a tcache) that are no chunk of the walk, e.g. inside a region whose walk stopped. */
  strays: { address: bigint; place: PlaceKind; bin?: number; arena: bigint }[];
}

interface Listing {
  /** The listed address as read (a corrupt list can hold any 64-bit value; the key is its number). */
  address: bigint;
  place: PlaceKind;
  bin?: number;
  tcache?: bigint;
  owner?: ThreadCache['owner'];
  arena: bigint;
}

/** Classifies every chunk of `walks` by the lists in `bins` and `tcaches`. */
export function placeChunks(
  arenas: readonly Arena[], bins: readonly ArenaBins[], tcaches: readonly ThreadCache[], walks: readonly RegionWalk[],
): Placement {
  // Keyed by the address as a number (exact: user space ends at 2^47): a
  // Map hashes a bigint key through a runtime call, once per chunk walked.
  const listed = new Map<number, Listing>();
  // A corrupt list can hold any 64-bit value; one at or above 2^53 is no
  // chunk of any walk (and no exact number): a stray, kept as read.
  const far: Listing[] = [];
  const enlist = (listing: Listing) => {
    if (listing.address < 1n << 53n) listed.set(Number(listing.address), listing);
    else far.push(listing);
  };
  for (const b of bins) {
    const add = (place: PlaceKind, list: ArenaBins['fastbins'], withIndex: boolean) => {
      for (const bin of list) for (const c of bin.chunks) enlist({ address: c.address, place, ...(withIndex ? { bin: bin.index } : {}), arena: b.arena });
    };
    add('fastbin', b.fastbins, true);
    add('unsorted', b.unsorted, false);
    add('smallbin', b.smallbins, true);
    add('largebin', b.largebins, true);
  }
  for (const t of tcaches) {
    for (const bin of t.bins) for (const c of bin.chunks) enlist({ address: c.address, place: 'tcache', bin: bin.index, tcache: t.address, owner: t.owner, arena: t.arena });
  }
  const structs = new Map(tcaches.map((t) => [Number(t.address), t]));
  const byArena = new Map(arenas.map((a) => [a.address, a]));
  const met = new Set<number>();
  const regions = walks.map((w): RegionPlaces => {
    const arena = byArena.get(w.arena);
    const lastRemainder = arena === undefined ? -1 : Number(arena.lastRemainder);
    const start = Number(w.start);
    const { table } = w.walk;
    const chunks: PlacedChunk[] = new Array(table.count);
    for (let i = 0; i < table.count; i++) {
      const at = start + table.offsets[i];
      const address = bigintOf(at);
      const chunk: PlacedChunk = { address, size: table.sizes[i], place: 'in-use' };
      const list = listed.get(at);
      const struct = structs.get(at);
      if (i === w.walk.top) chunk.place = 'top';
      else if (list !== undefined) {
        met.add(at);
        chunk.place = list.place;
        if (list.bin !== undefined) chunk.bin = list.bin;
        if (list.tcache !== undefined) Object.assign(chunk, { tcache: list.tcache, owner: list.owner });
      } else if ((table.bits[i] & FREE_BIT) !== 0) chunk.place = 'unlisted';
      else if (struct !== undefined) Object.assign(chunk, { place: 'tcache-struct', tcache: struct.address, owner: struct.owner });
      // An older thread heap ends in one fencepost; a non-contiguous main_arena's [heap] in two (no chunk is under 32 bytes).
      else if (w.walk.ending === 'fencepost' && i >= table.count - 2 && table.sizes[i] === 16) chunk.place = 'fencepost';
      if (at === lastRemainder) chunk.lastRemainder = true;
      chunks[i] = chunk;
    }
    return { arena: w.arena, kind: w.kind, start: w.start, end: w.end, chunks, ...(w.reason === undefined ? {} : { reason: w.reason }) };
  });
  const strays = [...[...listed].filter(([at]) => !met.has(at)).map(([, l]) => l), ...far]
    .map((l) => ({ address: l.address, place: l.place, ...(l.bin === undefined ? {} : { bin: l.bin }), arena: l.arena }));
  return { regions, strays };
}

/** A line per inconsistency the placement found: unlisted free chunks and strays. */
export function placementProblems(p: Placement): string[] {
  const out: string[] = [];
  for (const r of p.regions) {
    for (const c of r.chunks) if (c.place === 'unlisted') out.push(`the chunk at ${hex(c.address)} (${hex(c.size)}) is free by its next chunk's P bit, but no bin of arena ${hex(r.arena)} lists it`);
  }
  for (const s of p.strays) out.push(`${hex(s.address)}, listed in ${s.place}${s.bin === undefined ? '' : ` ${s.bin}`}, is no chunk of the walk`);
  return out;
}
