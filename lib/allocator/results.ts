// The allocator-state results, built from one decoded snapshot whatever
// process it was copied from: this one (allocator-state.ts) or another
// (remote/attach.ts). One decode, one set of result shapes, two byte sources.
import { HeapscopeError } from '../errors';
import { plural } from '../format';
import { DocumentMethods, DocumentViews, presenter, withDocumentViews } from '../presenters';
import { descriptor, own } from '../validate';
import { Arena } from './arenas';
import { ArenaBins } from './bins';
import { RegionWalk } from './heap-walks';
import { AllocatorImage } from './image';
import { LibcFile } from './libc-file';
import { maxFastOffset, readGlobalMaxFast } from './max-fast';
import { MallocParams } from './params';
import { PlaceKind, Placement, placementProblems, RegionPlaces } from './places';
import { AllocatorState, decodeAllocator, publicArenas } from './state';
import { ThreadCache } from './tcaches';
import { ArenaTotals, MallinfoTotals } from './totals';
import type { readVisOptions } from './vis';
import { VisData, visChunks } from './vis';

/** How the snapshot behind a result was taken. */
export interface SnapshotInfo {
  attempts: number;
  consistent: boolean;
  reason?: string;
  /** Why the copy may have made pages never touched resident, when it may have (see CopiedSnapshot). */
  madeResident?: string;
}

/** What arenas() found, as plain data: what its views read. */
export interface ArenasData {
  arenas: Arena[];
  /** main_arena's `next` list led back to it. */
  complete: boolean;
  reason?: string;
  snapshot: SnapshotInfo;
}

/** arenas()'s result: the data, and its views (non-enumerable). */
export interface ArenasResult extends ArenasData, DocumentMethods {}

/** What mallocParams() read, as plain data. */
export interface MallocParamsData extends MallocParams {
  snapshot: SnapshotInfo;
}

export interface MallocParamsResult extends MallocParamsData, DocumentMethods {}

/** What bins() found, as plain data. */
export interface BinsData {
  /** Per arena, in the order of the arena list. */
  arenas: ArenaBins[];
  snapshot: SnapshotInfo;
}

export interface BinsResult extends BinsData, DocumentMethods {}

/** How arenas, mp_ and bins show themselves (a REPL line, a notebook bundle, Markdown, HTML); installed by the view layer. */
export const allocatorViews = presenter<{
  arenas: DocumentViews<ArenasData>;
  params: DocumentViews<MallocParamsData>;
  bins: DocumentViews<BinsData>;
  vis: DocumentViews<VisResultData> & { svg(value: VisResultData): string };
}>('the allocator state');

/** What vis() shows, as plain data. */
export interface VisResultData extends VisData {
  snapshot: SnapshotInfo;
}

/** vis()'s result: the data, and its views (non-enumerable). */
export interface VisResult extends VisResultData, DocumentMethods {
  /** The lines as a self-contained SVG document: monospace text on each chunk's colour. */
  toSVG(): string;
}

export interface TcachesResult {
  tcaches: ThreadCache[];
  emptyLookalikes: bigint[];
  /** Chunks that look like a tcache in use but whose lists do not decode (see TcacheSearch), each with why. */
  undecoded: { address: bigint; reason: string }[];
  snapshot: SnapshotInfo;
}

export interface ChunkPlacesResult {
  regions: RegionPlaces[];
  strays: Placement['strays'];
  /** Per arena: chunks and bytes in each place. */
  totals: { arena: bigint; places: Partial<Record<PlaceKind, { count: number; bytes: number }>> }[];
  /** Each inconsistency between the walk and the lists, as a sentence. */
  problems: string[];
  snapshot: SnapshotInfo;
}

/** The decode's totals, per arena and summed as int_mallinfo sums them. */
export interface DecodedTotalsResult {
  perArena: ArenaTotals[];
  total: MallinfoTotals;
  /** Why the decode's totals may be short. */
  incomplete: string[];
  snapshot: SnapshotInfo;
}

/** What every snapshot has, whichever process it was copied from. */
export interface CopiedSnapshot {
  image: AllocatorImage;
  /** The libc file mapped, which global_max_fast's measured offset is cached by. */
  libc: LibcFile;
  /** The probe chunk's user pointer, when there was a probe. */
  probe?: bigint;
  /** The chunk walks made while it was read, when its image holds chunk headers only (remote/header-snapshot.ts). */
  walks?: readonly RegionWalk[];
  attempts: number;
  consistent: boolean;
  reason?: string;
  /**
   * The copy leaves the pages of [heap] and the arena heaps that were never
   * touched alone (zero in the copy) rather than make them resident; when
   * /proc/PID/pagemap could not be read it read them all, and this says so.
   */
  madeResident?: string;
}

/** The sentence for a copy that read every page: `file` (a pagemap) could not be read. */
export function madeResidentReason(file: string, errno: number): string {
  return `the copy may have made pages never touched resident: ${file} could not be read (errno ${errno})`;
}

export interface Decoded { state: AllocatorState; info: SnapshotInfo }

/** Decodes `s` (a torn snapshot's failure says so). */
export function decodeSnapshot(s: CopiedSnapshot): Decoded {
  let state: AllocatorState;
  try {
    const [probe, walks] = [own(s, 'probe'), own(s, 'walks')];
    state = decodeAllocator(s.image, { ...(probe === undefined ? {} : { probe }), ...(walks === undefined ? {} : { walks }) });
  } catch (error) {
    if (error instanceof HeapscopeError && !s.consistent) error.message += ` (the snapshot was torn after ${plural(s.attempts, 'attempt')}: ${s.reason})`;
    throw error;
  }
  return {
    state,
    info: {
      attempts: s.attempts, consistent: s.consistent, ...(own(s, 'reason') === undefined ? {} : { reason: s.reason }),
      ...(own(s, 'madeResident') === undefined ? {} : { madeResident: s.madeResident }),
    },
  };
}

export function arenasResult({ state, info }: Decoded): ArenasResult {
  return withDocumentViews({ ...publicArenas(state.arenas), snapshot: info }, () => allocatorViews.views.arenas);
}

/** mp_, and global_max_fast at the offset from main_arena measured once per libc file in forks of this process. */
export function mallocParamsResult(s: CopiedSnapshot, { state, info }: Decoded): MallocParamsResult {
  const globalMaxFast = readGlobalMaxFast(s.image, state.mainArena, maxFastOffset(s.libc), s.libc.key);
  return withDocumentViews({ ...state.params, globalMaxFast, snapshot: info }, () => allocatorViews.views.params);
}

export function binsResult({ state, info }: Decoded): BinsResult {
  return withDocumentViews({ arenas: state.bins, snapshot: info }, () => allocatorViews.views.bins);
}

export function tcachesResult({ state, info }: Decoded): TcachesResult {
  return { ...state.tcaches, snapshot: info };
}

export function chunkPlacesResult({ state, info }: Decoded): ChunkPlacesResult {
  const { regions, strays } = state.placement;
  const totals = state.arenas.arenas.map((a) => {
    const places: ChunkPlacesResult['totals'][number]['places'] = {};
    for (const r of regions) {
      if (r.arena !== a.address) continue;
      for (const c of r.chunks) {
        const t = (places[c.place] ??= { count: 0, bytes: 0 });
        t.count++;
        t.bytes += c.size;
      }
    }
    return { arena: a.address, places };
  });
  const main = state.arenas.arenas.find((a) => a.kind === 'main' && a.noncontiguous);
  return { regions, strays, totals, problems: placementProblems(state.placement, main?.address), snapshot: info };
}

export function decodedTotalsResult({ state, info }: Decoded): DecodedTotalsResult {
  const { perArena, total, incomplete } = state.totals;
  return { perArena, total, incomplete, snapshot: info };
}

/** The chunks from `options.address` on (see visChunks; options read by readVisOptions), with toSVG() beside the document views. */
export function visResult({ state, info }: Decoded, image: AllocatorImage, options: ReturnType<typeof readVisOptions>): VisResult {
  const data: VisResultData = { ...visChunks(image, state.placement, options), snapshot: info };
  const result = withDocumentViews(data, () => allocatorViews.views.vis);
  Object.defineProperty(result, 'toSVG', descriptor({ value(this: VisResultData) { return allocatorViews.views.vis.svg(this); } }));
  return result as VisResult;
}
