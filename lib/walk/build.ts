// A walk made from one decoded allocator snapshot, whichever process it
// was copied from: every region's chunks with their places, the totals,
// and the walk's own mallinfo2() (against the real one when there is one).
import type { Arena } from '../allocator/arenas';
import type { MallocParams } from '../allocator/params';
import type { RegionWalk } from '../allocator/heap-walks';
import { isFencepost, placementProblems } from '../allocator/places';
import type { Decoded } from '../allocator/results';
import { hex } from '../format';
import type { StepResult } from '../plan';
import type { Mallinfo } from '../stats';
import { mallinfoChecks, walkMallinfo } from './checks';
import { addTotals, emptyTotals, HeapRegionWalk, OwnBlocks, regionWalk } from './heap-walk';
import type { HeapWalkData } from './walk-data';
import { own } from '../validate';

export interface WalkSource {
  /** Only main_arena's regions in the result (the totals and checks still cover every arena). */
  mainOnly: boolean;
  /** heapscope's live allocations, in this process only. */
  ours?: OwnBlocks;
  mallinfo?: Mallinfo;
  programBreak?: bigint;
  steps: StepResult[];
  pid?: number;
}

/** The walk of the snapshot `d` decodes. */
export function heapWalkData({ state, info }: Decoded, source: WalkSource): HeapWalkData {
  const main = state.arenas.arenas.find((a) => a.kind === 'main')!;
  const regions = state.walks.map((w, i) => regionWalk(w, state.placement.regions[i], source.ours, fencedReason(w, main, state.walks)));
  const mallinfoTotals = walkMallinfo(state.arenas.arenas, regions, state.params.values);
  const heap = regions.find((r) => r.kind === 'heap') ?? noHeap(main, state.params);
  const mainTop = regions.find((r) => r.kind === 'top-region');
  const threadHeaps = source.mainOnly ? [] : regions.filter((r) => r.kind === 'arena-heap');
  const shown = [heap, ...(mainTop === undefined ? [] : [mainTop]), ...threadHeaps];
  const totals = emptyTotals();
  for (const r of shown) addTotals(totals, r.totals);
  const tcaches = source.mainOnly ? state.tcaches.tcaches.filter((t) => t.arena === main.address) : state.tcaches.tcaches;
  return {
    ...(source.pid === undefined ? {} : { pid: source.pid }),
    main: heap, ...(mainTop === undefined ? {} : { mainTop }), threadHeaps, totals, tcaches, mallinfoTotals,
    ...(source.mallinfo === undefined ? {} : { mallinfo: source.mallinfo }),
    checks: source.mallinfo === undefined ? [] : mallinfoChecks(mallinfoTotals, source.mallinfo),
    problems: [...placementProblems(state.placement, main.noncontiguous ? main.address : undefined), ...state.totals.incomplete],
    consistent: info.consistent, ...(own(info, 'reason') === undefined ? {} : { inconsistency: info.reason }), attempts: info.attempts,
    ...(own(info, 'madeResident') === undefined ? {} : { madeResident: info.madeResident }),
    ...(source.programBreak === undefined ? {} : { programBreak: source.programBreak }), steps: source.steps,
  };
}

function noHeap(main: Arena, params: MallocParams): HeapRegionWalk {
  const mapped = params.mainArenaMapped
    ? `mp_.hp_pagesize is ${params.values.hpPagesize} (set by glibc.malloc.hugetlb), so glibc took main_arena's memory with mmap without asking sbrk`
    : "brk() failed and glibc took main_arena's memory with mmap";
  const why = main.noncontiguous ? `main_arena is non-contiguous: ${mapped} (its top is walked as main_arena's top region, when copied)` : 'main_arena has not used sbrk';
  return {
    arena: main.address, kind: 'heap', start: 0n, end: 0n, firstChunk: 0n, chunks: [], complete: false,
    reason: `this process has no [heap] region: ${why}`, totals: emptyTotals(),
  };
}

/**
 * Where a non-contiguous main_arena's top went, for a [heap] that ends in
 * glibc's double fencepost at the break instead of the top chunk.
 */
function fencedReason(w: RegionWalk, main: Arena, walks: readonly RegionWalk[]): string | undefined {
  const { table } = w.walk;
  if (w.kind !== 'heap' || w.walk.ending !== 'fencepost' || own(w, 'reason') !== undefined) return undefined;
  const fence = w.start + BigInt(table.offsets[table.count - 2]);
  const oldTop = table.count >= 3 && isFencepost(w, table.count - 3) ? `, after the 16 bytes sysmalloc left of the old top at ${hex(fence - 16n)}` : '';
  const copied = walks.some((x) => x.kind === 'top-region');
  const top = main.top.size === undefined ? `at ${hex(main.top.address)}, whose size was not copied,` : `(${main.top.size} bytes, mallinfo2's keepcost) at ${hex(main.top.address)}`;
  const why = main.noncontiguous ? 'brk() failed once and main_arena went non-contiguous' : "main_arena's top moved away from the break";
  // Short of the break, no chunk header follows the pair (ChunkWalker): the rest is not main_arena's.
  const pairEnd = w.start + BigInt(w.walk.reached);
  const ends = pairEnd === w.end
    ? `[heap] ends at the break in glibc's double fencepost (${hex(fence)}${oldTop})`
    : `main_arena's chunks in [heap] end in glibc's double fencepost (${hex(fence)}${oldTop}), ${w.end - pairEnd} bytes short of the break (${hex(w.end)}), ` +
      'where what follows is no chunk header (memory glibc\'s own sbrk took would begin with one: something else moved the break on from there)';
  return `${ends}: ${why}, ` +
    `so its top chunk ${top} lies in memory glibc took with mmap (${copied ? 'walked as main_arena\'s top region' : 'not in the snapshot'}); ` +
    'the chunks carved from that memory before the top are not walked: glibc keeps no record of where it starts';
}
