// The whole allocator decoded from one image: malloc's globals located,
// every arena, mp_ and global_max_fast, every bin, every tcache, every
// chunk placed, and the totals mallinfo2() must agree with. A pure function
// of the image (and of global_max_fast's measured offset).
import { Arena, ArenaList, decodeArenas } from './arenas';
import { ArenaBins, decodeBins } from './bins';
import { RegionWalk, walkArenas } from './heap-walks';
import { AllocatorImage, locateGlobals, requireGlobals } from './image';
import { MallocGlobals } from './locate';
import { MaxFastOffset, readGlobalMaxFast } from './max-fast';
import { decodeParams, MallocParams } from './params';
import { Placement, placeChunks } from './places';
import { findTcaches, TcacheSearch } from './tcaches';
import { DecodedTotals, decodedTotals } from './totals';
import { own } from '../validate';

export interface DecodeOptions {
  /** global_max_fast's offset from main_arena for this libc (see maxFastOffset), and the libc file's key. */
  maxFast?: { measured: MaxFastOffset; libc: string };
  /** The user pointer of a chunk the calling thread freed into its tcache just before the copy. */
  probe?: bigint;
  /** The walks made while the image was read, for an image that holds chunk headers only (see header-memory.ts). */
  walks?: readonly RegionWalk[];
}

export interface AllocatorState {
  globals: MallocGlobals;
  mainArena: bigint;
  arenas: ArenaList;
  params: MallocParams;
  bins: ArenaBins[];
  walks: readonly RegionWalk[];
  tcaches: TcacheSearch;
  /** Every walked chunk with its place: made when first read (a million chunks take a million objects). */
  readonly placement: Placement;
  totals: DecodedTotals;
}

/**
 * Decodes everything from `image`. Throws ERR_ALLOCATOR_NOT_FOUND when
 * main_arena or mp_ cannot be located; every inconsistency after that is a
 * `reason` in the part it concerns.
 */
export function decodeAllocator(image: AllocatorImage, options: DecodeOptions = {}): AllocatorState {
  const globals = locateGlobals(image);
  const { mainArena, mallocPar } = requireGlobals(globals);
  const measured = own(options, 'maxFast');
  const maxFast = readGlobalMaxFast(image, mainArena, measured?.measured, measured?.libc ?? '');
  const params = decodeParams(image, mallocPar, maxFast);
  const arenas = decodeArenas(image, mainArena, params.values);
  const bins = arenas.arenas.map((a, i) => decodeBins(image, a, arenas.states[i]));
  const walks = own(options, 'walks') ?? walkArenas(image, arenas.arenas, params.values.sbrkBase);
  const tcaches = findTcaches(image, arenas.arenas, walks, params.values, own(options, 'probe'));
  const totals = decodedTotals(arenas.arenas, bins, params.values);
  let placement: Placement | undefined;
  return {
    globals, mainArena, arenas, params, bins, walks, tcaches, totals,
    get placement() {
      placement ??= placeChunks(arenas.arenas, bins, tcaches.tcaches, walks);
      return placement;
    },
  };
}

/** The arenas without their raw malloc_state. */
export function publicArenas(list: ArenaList): { arenas: Arena[]; complete: boolean; reason?: string } {
  return { arenas: list.arenas, complete: list.complete, ...(own(list, 'reason') === undefined ? {} : { reason: list.reason }) };
}
