// The bins experiment's measurement: one plan that frees and mallocs test
// chunks stage by stage and copies the allocator after each stage (a
// frame), so every stage's bins are decoded from bytes copied in the same
// native call as the frees and mallocs themselves.
//
// Before the test chunks, fillers take every free chunk main_arena's bins
// and this thread's tcache held when they were read just before the plan,
// and one more malloc takes most of top: the test chunks are then carved
// back to back from a top small enough that freeing into it cannot reach
// the trim threshold, and the bins hold nothing but test chunks.
import { GlibcLayout, layoutFor } from '../../allocator/layouts';
import { MaxFastOffset, maxFastOffset } from '../../allocator/max-fast';
import { decodeAllocator } from '../../allocator/state';
import { copiedSnapshot, copySources, PlannedCopy, planCopy } from '../../allocator/take-snapshot';
import { HeapscopeError } from '../../errors';
import { hex } from '../../format';
import { maps } from '../../maps';
import { PlanStep, runPlan } from '../../plan';
import { MINSIZE, requestToChunkSize } from '../../size-classes';
import { glibcVersion } from '../../stats';
import { fillers } from './fillers';
import { BinLine, ChunkPlace, FrameParams, frameState, placeOf } from './frame';

export type { BinKind, BinLine, ChunkPlace, FrameParams } from './frame';

/** A fastbin-sized request when global_max_fast allows it: chunk 0x30. */
export const FAST_REQUEST = 40;
/** Chunk 0xc0: above the largest global_max_fast set_max_fast can give (0xb0), inside the tcache's range. */
export const SMALL_REQUEST = 184;
/** Chunk 0x460: past the largest chunk a tcache can hold (0x410), in a large bin. */
export const LARGE_REQUEST = 1100;
/** Chunk 0x1010: a large-bin request bigger than every chunk freed before it, so the unsorted scan sorts them all. */
export const SORT_REQUEST = 4096;
/** Chunk 0x2010: a large-bin request bigger than every free test chunk then. */
export const CONSOLIDATE_REQUEST = 8192;
/** Chunk 0x100: a small request that no tcache bin, fastbin or small bin of its size serves. */
export const SPLIT_REQUEST = 248;
/** The in-use chunk after a test chunk that keeps it from merging forward. */
export const GUARD_REQUEST = 24;
/**
 * What top is left with beyond what the plan carves from it: room for
 * fillers that miss their chunk (one freed or taken after it was read) and
 * take from top instead, where a smaller top would make the break move in
 * the middle of the plan. At most half mp_.trim_threshold, and at least
 * TOP_LEFT_MIN, and then the fillers' own bytes on top of that (all of them
 * may miss), but never within TOP_LEFT_MIN of mp_.trim_threshold: the one
 * free into top (big2, which the plan took from top) must not trim the heap.
 * With 16 KiB alone, top ran out before malloc(8192) in four runs of eight
 * here (the fillers took ~61 KB), and the break moved mid-plan.
 */
const TOP_LEFT = 256 * 1024;
const TOP_LEFT_MIN = 16 * 1024;
/** Drains of each size beyond mp_.tcache_count: for chunks of that size freed after the fillers were read. */
const DRAIN_EXTRA = 16;
/** Rounds of SOAKED mallocs after the drains (see drains). */
const SOAK = 32;
const SOAKED = [GUARD_REQUEST, FAST_REQUEST, GUARD_REQUEST, SMALL_REQUEST, GUARD_REQUEST, LARGE_REQUEST];
/**
 * The most the plan's copies may hold resident together. By the time
 * `heapscope tour --in-process` reaches bins, the earlier experiments have
 * grown [heap] to 12–27 MiB here and Node's thread arenas hold about 13 MiB:
 * 14 copies of 26 MiB fit, of 40 MiB do not.
 */
export const MAX_COPIES = 512 * 1024 * 1024;

/**
 * Which case a step was built to show, named after where glibc 2.36 puts its
 * chunks: a name, not a finding. Later releases put some elsewhere (from 2.41
 * the `unsorted` step's small chunk goes to its small bin; 2.43 has no
 * fastbins for `fastbin`, `no-merge` and `consolidate`), and each row's
 * places, and the findings, say where they went.
 */
export type BinsStage =
  | 'start' | 'tcache' | 'unsorted' | 'sort' | 'fastbin' | 'no-merge' | 'apart' | 'coalesce' | 'consolidate' | 'split' | 'remainder' | 'top';

export interface BinsRow {
  /** The frame's place in the plan, from 0 (the test chunks malloc'd, nothing freed). */
  step: number;
  stage: BinsStage;
  /** What the step did, in words. */
  action: string;
  /** The test chunks the step freed or malloc'd (the start: every test chunk). */
  chunks: string[];
  /** Where each of `chunks` is after the step, from this frame's decode. */
  places: ChunkPlace[];
  /**
   * start: each test chunk's request, its size from its header, and whether
   * its neighbours are the ones planned: it starts where the chunk malloc'd
   * just before it (a guard, or the chunk before it in a1–a2 and P–Q–R)
   * ends, and the one malloc'd just after it starts where it ends.
   */
  carved?: { name: string; request: number; size: number; after: boolean; before: boolean }[];
  /** malloc steps: the chunk each request got (from the header). */
  got?: { name: string; request: number; address: bigint; size: number }[];
  /** The bins holding chunks after the step: this thread's tcache, then main_arena's. */
  bins: BinLine[];
  top: { address: bigint; size: number };
  lastRemainder: bigint;
  programBreak: bigint;
  params?: FrameParams;
  /** The copy was of one moment (mallinfo and the break stood still, the arena list closes) and decoded. */
  consistent: boolean;
  reason?: string;
}

interface Test { name: string; request: number; step: number }

/** A stage of the plan: its ops (built when the plan is) and the copy after them. */
interface StageSpec {
  stage: BinsStage;
  action: string;
  chunks: string[];
  mallocs: Test[];
  copy?: PlannedCopy;
}

/** What was read just before the plan, and the plan's fillers. */
export interface Preparation {
  /** mp_.tcache_count read just before the plan: how many frees fill a tcache bin. */
  tcacheCount: number;
  /** Fillers for the chunks this thread's tcache held. */
  tcacheFillers: number;
  /** Fillers for the chunks main_arena's bins held. */
  binFillers: number;
  /** Mallocs of each size the test chunks have, after the fillers (see drains). */
  drains: number;
  /** main_arena's top before the plan, and the malloc that took most of it (0: none). */
  topBefore: number;
  topTaken: number;
}

export interface Measured {
  rows: BinsRow[];
  preparation: Preparation;
  /** Earlier runs of the plan, each with the disturbance that made it be measured again. */
  missed: string[];
  /** Where this glibc's free puts a small chunk no tcache or fastbin takes (GlibcLayout.freedSmall). */
  freedSmall: GlibcLayout['freedSmall'];
  /** Whether this glibc has fastbins (GlibcLayout.fastbins: not from 2.43). */
  fastbins: boolean;
}

const range = (prefix: string, from: number, to: number): string[] =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => `${prefix}${from + i}`);

/** `s1–s7`, `s8`, or nothing. */
export function nameRange(names: readonly string[]): string {
  return names.length === 0 ? 'nothing' : names.length === 1 ? names[0] : `${names[0]}–${names[names.length - 1]}`;
}

/** The test chunks malloc'd before the first frame, in carving order: ahead of each guard, the chunks it protects. */
function layout(count: number): { tests: { name: string; request: number }[]; guardsAfter: Set<string> } {
  const tests: { name: string; request: number }[] = [];
  const guardsAfter = new Set<string>();
  const add = (name: string, request: number, guard: boolean) => {
    tests.push({ name, request });
    if (guard) guardsAfter.add(name);
  };
  for (const name of range('f', 1, count + 1)) add(name, FAST_REQUEST, true);
  add('a1', FAST_REQUEST, false);
  add('a2', FAST_REQUEST, true);
  for (const name of range('s', 1, count + 1)) add(name, SMALL_REQUEST, true);
  add('L', LARGE_REQUEST, true);
  add('P', LARGE_REQUEST, false);
  add('Q', LARGE_REQUEST, false);
  add('R', LARGE_REQUEST, true);
  return { tests, guardsAfter };
}

function stages(count: number): Omit<StageSpec, 'copy'>[] {
  const s = range('s', 1, count);
  const f = range('f', 1, count);
  const freeing = (names: string[]) => `free ${nameRange(names)}`;
  const list: Omit<StageSpec, 'copy'>[] = [
    { stage: 'tcache', action: freeing(s), chunks: s, mallocs: [] },
    { stage: 'unsorted', action: `free s${count + 1}`, chunks: [`s${count + 1}`], mallocs: [] },
    { stage: 'unsorted', action: 'free L', chunks: ['L'], mallocs: [] },
    { stage: 'sort', action: `malloc(${SORT_REQUEST}) → big1`, chunks: ['big1'], mallocs: [{ name: 'big1', request: SORT_REQUEST, step: -1 }] },
    { stage: 'tcache', action: freeing(f), chunks: f, mallocs: [] },
    { stage: 'fastbin', action: `free f${count + 1}`, chunks: [`f${count + 1}`], mallocs: [] },
    { stage: 'no-merge', action: 'free a1, a2', chunks: ['a1', 'a2'], mallocs: [] },
    { stage: 'apart', action: 'free P, R', chunks: ['P', 'R'], mallocs: [] },
    { stage: 'coalesce', action: 'free Q', chunks: ['Q'], mallocs: [] },
    {
      stage: 'consolidate', action: `malloc(${CONSOLIDATE_REQUEST}) → big2`, chunks: ['big2'],
      mallocs: [{ name: 'big2', request: CONSOLIDATE_REQUEST, step: -1 }],
    },
    { stage: 'split', action: `malloc(${SPLIT_REQUEST}) → cut1`, chunks: ['cut1'], mallocs: [{ name: 'cut1', request: SPLIT_REQUEST, step: -1 }] },
    { stage: 'remainder', action: `malloc(${SPLIT_REQUEST}) → cut2`, chunks: ['cut2'], mallocs: [{ name: 'cut2', request: SPLIT_REQUEST, step: -1 }] },
    { stage: 'top', action: 'free big2', chunks: ['big2'], mallocs: [] },
  ];
  // With mp_.tcache_count 0 no free fills a tcache bin: those steps do nothing.
  return list.filter((st) => st.chunks.length > 0);
}

/**
 * A malloc that leaves top with room (TOP_LEFT) beyond the `carved` bytes
 * the test chunks take, the fillers' `fillerBytes` among it. Top is read
 * right before the plan: decoding the snapshot mallocs and frees next to it.
 */
function topTaker(steps: PlanStep[], carved: number, fillerBytes: number, trimThreshold: number): { taker?: number; topBefore: number; topTaken: number } {
  const topBefore = runPlan([{ op: 'mallinfo' }]).steps[0].mallinfo!.keepcost;
  const room = Math.max(TOP_LEFT_MIN, Math.min(TOP_LEFT, Math.floor(trimThreshold / 2) - carved));
  const take = topBefore - carved - room - Math.max(0, Math.min(fillerBytes, trimThreshold - TOP_LEFT_MIN - room));
  if (take < 4 * MINSIZE) return { topBefore, topTaken: 0 };
  const taker = steps.push({ op: 'malloc', size: take - 8 }) - 1;
  steps.push({ op: 'header', step: taker });
  return { taker, topBefore, topTaken: take };
}

/** The sizes the plan mallocs that a tcache bin, a fastbin or a small bin of their own size could serve. */
const DRAINED = [GUARD_REQUEST, FAST_REQUEST, SMALL_REQUEST, SPLIT_REQUEST];

/**
 * Mallocs of each DRAINED size, after the fillers: chunks of those sizes
 * freed after the fillers were read (Node frees small objects whenever V8
 * collects their owners) would otherwise serve the test chunks. More than
 * a tcache bin holds, plus what came after.
 */
function drains(count: number): PlanStep[] {
  const steps = DRAINED.flatMap((size) => Array.from({ length: count + DRAIN_EXTRA }, () => ({ op: 'malloc' as const, size })));
  // Then the test chunks' pattern, SOAK times over: a free chunk the drains
  // split (one that came after the fillers were read) is used up by these,
  // not by the test chunks.
  for (let i = 0; i < SOAK; i++) for (const size of SOAKED) steps.push({ op: 'malloc', size });
  return steps;
}

/** Bytes the drains, the test chunks, their guards, the probe and the mallocs from top take at most. */
function carvedBytes(count: number): number {
  const { tests, guardsAfter } = layout(count);
  const guard = requestToChunkSize(GUARD_REQUEST);
  return tests.reduce((n, t) => n + requestToChunkSize(t.request) + (guardsAfter.has(t.name) ? guard : 0), 0) +
    2 * guard + requestToChunkSize(SORT_REQUEST) + requestToChunkSize(CONSOLIDATE_REQUEST) +
    DRAINED.reduce((n, size) => n + (count + DRAIN_EXTRA) * requestToChunkSize(size), 0) +
    SOAK * SOAKED.reduce((n, size) => n + requestToChunkSize(size), 0);
}

/**
 * Refuses a plan whose copies would hold more than MAX_COPIES. A copy leaves
 * the pages never touched alone (neither read nor made resident), so what
 * each costs is what its regions hold resident: `resident` is smaps' account,
 * read before the fillers (reading it allocates, and what it frees later
 * must not land among them); a region it does not know counts whole.
 */
function copyBudget(sources: ReturnType<typeof copySources>, frames: number, resident: ReadonlyMap<bigint, number>, carved: number, count: number, isolated: boolean): void {
  const held = (r: { start: bigint; size: number }) => Math.min(r.size, resident.get(r.start) ?? r.size);
  const heap = sources.heap === undefined ? 0 : Number(sources.heapEnd! - sources.heap.start);
  // What the plan carves is written, and copied by every frame after it.
  const heapHeld = sources.heap === undefined ? 0 : Math.min(heap, (resident.get(sources.heap.start) ?? heap) + Math.max(0, heap - sources.heap.size)) + carved;
  const libc = sources.libc.reduce((n, r) => n + held(r), 0);
  const arenaHeaps = sources.arenaHeaps.reduce((n, r) => n + held(r), 0);
  const bytes = libc + heapHeld + arenaHeaps;
  if (bytes * frames > MAX_COPIES) {
    // The way out depends on which part is big: the blocks a large tcache_count makes the plan carve, or memory this process holds.
    const parts = `libc's data ${libc}, [heap] ${heapHeld - carved} of its ${heap}, thread-arena heaps ${arenaHeaps}, ` +
      `the plan's own blocks ${carved} for a tcache_count of ${count}`;
    throw new HeapscopeError('ERR_EXPERIMENT_FAILED', `bins copies the allocator ${frames} times in one plan, about ${bytes} resident bytes each here ` +
      `(${parts}), more than the ${MAX_COPIES} bytes it allows` +
      (carved > bytes / 2 ? ': a smaller glibc.malloc.tcache_count keeps the copies within it' : isolated ? '' : ': run it isolated (the default), in a fresh child'));
  }
}

function measureOnce(measured: MaxFastOffset, isolated: boolean): { rows: BinsRow[]; preparation: Preparation; disturbance?: string } {
  const resident = new Map(maps({ rss: true }).map((r) => [r.start, r.rss ?? r.size]));
  const { steps, tcacheCount: count, trimThreshold, tcacheFillers, binFillers, bytes: fillerBytes } = fillers();
  // The map is read after the snapshot's decode (which can move the break), top last.
  const sources = copySources();
  // One at a time: with a large tcache_count the drains are more steps than a call's arguments may be.
  for (const step of drains(count)) steps.push(step);
  const { taker, topBefore, topTaken } = topTaker(steps, carvedBytes(count), fillerBytes, trimThreshold);
  const preparation: Preparation = { tcacheCount: count, tcacheFillers, binFillers, drains: count + DRAIN_EXTRA, topBefore, topTaken };
  const { tests, guardsAfter } = layout(count);
  const spec: StageSpec[] = stages(count);
  const push = (step: PlanStep) => steps.push(step) - 1;
  const at = new Map<string, Test>();
  const mallocWithHeader = (name: string, request: number): Test => {
    const step = push({ op: 'malloc', size: request });
    push({ op: 'header', step });
    const t = { name, request, step };
    at.set(name, t);
    return t;
  };
  // A guard first, so that every test chunk has an in-use chunk before it.
  const carving: Test[] = [mallocWithHeader('first guard', GUARD_REQUEST)];
  for (const t of tests) {
    carving.push(mallocWithHeader(t.name, t.request));
    if (guardsAfter.has(t.name)) carving.push(mallocWithHeader(`guard after ${t.name}`, GUARD_REQUEST));
  }
  // The probe, freed into tcache bin 0 (every tcache has it): the head of
  // that bin marks this thread's tcache in every frame. It comes after the
  // last guard, the plan's last malloc of its size.
  const probeAt = count > 0 ? push({ op: 'malloc', size: GUARD_REQUEST }) : -1;
  if (probeAt >= 0) push({ op: 'free', step: probeAt });
  copyBudget(sources, spec.length + 1, resident, carvedBytes(count), count, isolated);
  // In the child, V8 runs single-threaded and nothing but this plan calls
  // malloc while it runs: its copies are read live, where a freeze would
  // fork the process for each of the 14 (the child took 0.42–0.48 s and
  // 9,300–9,600 page faults with them here, 0.32–0.36 s and 5,900–6,400
  // without). In-process, among V8's helper threads, each copy is frozen.
  const start = planCopy(steps, sources, isolated);
  for (const st of spec) {
    for (const name of st.chunks) {
      const m = st.mallocs.find((x) => x.name === name);
      if (m !== undefined) m.step = mallocWithHeader(name, m.request).step;
      else push({ op: 'free', step: at.get(name)!.step });
    }
    st.copy = planCopy(steps, sources, isolated);
  }
  const { steps: results } = runPlan(steps);

  const chunkOf = (step: number) => results[step].address! - 16n;
  const sizeOf = (step: number) => results[step + 1].header!.size;
  // Names by chunk address, as they stand at each frame: a malloc names its chunk, a split the rest.
  const names = new Map<bigint, string>();
  for (const t of tests) names.set(chunkOf(at.get(t.name)!.step), t.name);
  const probe = probeAt >= 0 ? results[probeAt].address! : undefined;
  if (probe !== undefined) names.set(probe - 16n, 'probe');

  const ends = (t: Test) => chunkOf(t.step) + BigInt(sizeOf(t.step));
  const carved = tests.map((t) => {
    const i = carving.findIndex((c) => c.name === t.name);
    const own = carving[i];
    return {
      name: t.name, request: t.request, size: sizeOf(own.step),
      after: ends(carving[i - 1]) === chunkOf(own.step), before: ends(own) === chunkOf(carving[i + 1].step),
    };
  });

  type Base = Pick<BinsRow, 'step' | 'stage' | 'action' | 'chunks' | 'carved' | 'got'>;
  const row = (copy: PlannedCopy, base: Base, placed: { name: string; address: bigint }[]): BinsRow => {
    const { snapshot, reason } = copiedSnapshot(copy, results, probe === undefined ? {} : { probe });
    let state;
    try {
      state = decodeAllocator(snapshot.image, { maxFast: { measured, libc: sources.libcFile.key }, ...(probe === undefined ? {} : { probe }) });
    } catch (error) {
      return {
        ...base, places: [], bins: [], top: { address: 0n, size: 0 }, lastRemainder: 0n, programBreak: snapshot.programBreak,
        consistent: false, reason: `${reason ?? 'the copy'}; it could not be decoded: ${(error as Error).message}`,
      };
    }
    const frame = frameState(state, names);
    return {
      ...base, places: placed.map((c) => placeOf(frame, c.name, c.address, names)), bins: frame.bins, top: frame.top,
      lastRemainder: frame.lastRemainder, programBreak: snapshot.programBreak, params: frame.params,
      consistent: reason === undefined, ...(reason === undefined ? {} : { reason }),
    };
  };
  const addressOf = (name: string) => ({ name, address: chunkOf(at.get(name)!.step) });
  const rows: BinsRow[] = [
    row(start, { step: 0, stage: 'start', action: `malloc ${tests.length} test chunks`, chunks: tests.map((t) => t.name), carved },
      tests.map((t) => addressOf(t.name))),
  ];
  spec.forEach((st, i) => {
    const got = st.mallocs.map((m) => ({ name: m.name, request: m.request, address: chunkOf(m.step), size: sizeOf(m.step) }));
    const placed = st.chunks.map(addressOf);
    for (const g of got) {
      names.set(g.address, g.name);
      // A split leaves the rest of the chunk right after the part handed out.
      if (st.stage === 'split' || st.stage === 'remainder') {
        const rest = { name: `rest of ${g.name}`, address: g.address + BigInt(g.size) };
        names.set(rest.address, rest.name);
        placed.push(rest);
      }
    }
    rows.push(row(st.copy!, { step: i + 1, stage: st.stage, action: st.action, chunks: st.chunks, ...(got.length > 0 ? { got } : {}) }, placed));
  });
  return { rows, preparation, ...(disturbanceOf(rows) === undefined ? {} : { disturbance: disturbanceOf(rows) }) };
}

/**
 * A known disturbance that a new run may not meet: a copy that was torn
 * (another thread used malloc, the break moved), the break moved between
 * two copies before the last stage, a test chunk not carved
 * between the neighbours planned at its own size, or a request that another
 * free chunk served instead of the one the stage is about (free chunks the
 * fillers missed: Node frees whenever V8 collects).
 */
function disturbanceOf(rows: readonly BinsRow[]): string | undefined {
  const torn = rows.find((r) => !r.consistent);
  if (torn !== undefined) return `the copy after step ${torn.step} (${torn.action}) was torn: ${torn.reason}`;
  const odd = rows[0].carved!.filter((c) => !c.after || !c.before || c.size !== requestToChunkSize(c.request));
  if (odd.length > 0) {
    return `${odd.length} test chunks were not carved between the neighbours planned at their own size ` +
      `(${odd.map((c) => `${c.name}: ${c.size} bytes${c.after && c.before ? '' : ', not between its neighbours'}`).join('; ')})`;
  }
  // Up to the last stage every request is served below the break: it moved when top ran out (fillers that missed took from it).
  const moved = rows.find((r) => r.stage !== 'top' && r.programBreak !== rows[0].programBreak);
  if (moved !== undefined) return `the break moved from ${hex(rows[0].programBreak)} to ${hex(moved.programBreak)} by step ${moved.step} (${moved.action})`;
  const by = (stage: BinsStage) => rows.find((r) => r.stage === stage);
  const split = by('split');
  const l = rows[0].places.find((p) => p.name === 'L');
  if (split?.got !== undefined && l !== undefined && split.got[0].address !== l.address) {
    return `the first malloc(${SPLIT_REQUEST}) got ${hex(split.got[0].address)}, not a piece of L: another free chunk was a better fit`;
  }
  const consolidate = by('consolidate');
  if (consolidate?.got !== undefined && consolidate.got[0].address + BigInt(consolidate.got[0].size) !== consolidate.top.address) {
    return `malloc(${CONSOLIDATE_REQUEST}) got a chunk that does not end at top: a free chunk served it`;
  }
  return undefined;
}

/** Runs of the plan to try for one without a known disturbance. */
const ATTEMPTS = 3;

/** The plan, measured again (up to three runs) while a known disturbance was seen; the last run is returned. */
export function measure(isolated: boolean): Measured {
  const missed: string[] = [];
  // global_max_fast's offset is measured by a plan of its own, whose copies
  // are Buffers freed whenever V8 collects them: before the fillers' snapshot.
  const maxFast = maxFastOffset(copySources().libcFile);
  for (let attempt = 1; ; attempt++) {
    const { rows, preparation, disturbance } = measureOnce(maxFast, isolated);
    if (disturbance === undefined || attempt >= ATTEMPTS) {
      const { freedSmall, fastbins } = layoutFor(glibcVersion());
      return { rows, preparation, missed, freedSmall, fastbins };
    }
    missed.push(disturbance);
  }
}
