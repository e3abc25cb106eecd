// walkHeap(): every chunk of main_arena's heap (and, on request, of every
// thread-arena heap), from one snapshot taken inside one native call.
import { inspect } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import { rangeError, typeError } from '../errors';
import { bytes, hex, shortBytes } from '../format';
import { maps, MemoryRegion } from '../maps';
import { MAX_PLAN_READ, PlanStep, runPlan, StepResult } from '../plan';
import { Mallinfo, programBreak } from '../stats';
import { describe, readArray, readOptions, toIndex } from '../validate';
import { InspectContext, MimeBundle, presenter } from '../presenters';
import { FREE_BIT, SnapshotWalk } from './chunk';
import { HeapRegionWalk, materialise } from './heap-walk';
import { MallinfoCheck, mallinfoChecks, walkMainHeap } from './main-arena';
import { decodeTcache, isTcacheStructSize, snapshotReader, Tcache } from './tcache';
import { HeapInfo, readHeapInfo, topFromState, walkArenaHeap } from './thread-arenas';
import { HeapWalkData, WalkSVGOptions } from './walk-data';

export { A_BIT, FREE_BIT, M_BIT, P_BIT, walkSnapshot } from './chunk';
export type { ChunkTable, SnapshotWalk, SnapshotWalkOptions } from './chunk';
export type { ChunkState, HeapChunk, HeapRegionWalk, WalkTotals } from './heap-walk';
export { mainHeapSnapshot, mallinfoChecks } from './main-arena';
export type { MainHeapSnapshot, MallinfoCheck } from './main-arena';
export { decodeTcache, TCACHE_BINS } from './tcache';
export type { Tcache, TcacheBin } from './tcache';
export type { HeapInfo } from './thread-arenas';
export type { HeapWalkData, WalkSVGOptions } from './walk-data';

export interface WalkOptions {
  /** `main` (default): main_arena's [heap]. `all`: every thread-arena heap too. */
  arena?: 'main' | 'all';
  /**
   * Plan steps run in the same native call just before the snapshot (see
   * runPlan); their allocations are still live in the snapshot and freed
   * right after it. Their results are in `steps`. They run again with each
   * new snapshot (see `attempts`).
   */
  before?: readonly PlanStep[];
  /**
   * How many snapshots to try for a consistent main heap, taken while mallinfo2() stood still (default 5).
   *
   * Off the main thread, `arena: 'all'` also finds the thread's tcache: the
   * plan then mallocs and frees one 1000-byte block after `before`, and the
   * struct whose bin starts with that chunk is the thread's. That chunk is
   * then in tcache, in the snapshot and after.
   */
  attempts?: number;
}

/** How a walk shows itself; installed by the view layer. */
export const walkViews = presenter<{
  svg(walk: HeapWalkData, options: WalkSVGOptions): string;
  html(walk: HeapWalkData, options: WalkSVGOptions): string;
  inspect(walk: HeapWalkData, depth: number, options?: InspectContext): string;
  bundle(walk: HeapWalkData): MimeBundle;
}>('HeapWalk');

/**
 * walkHeap()'s result: the data, plus its views (a one-line REPL summary,
 * an SVG strip, an HTML fragment, a Jupyter bundle).
 */
export class HeapWalk implements HeapWalkData {
  // Declared, not defined: the data's own properties, as walkHeap made them.
  declare main: HeapRegionWalk;
  declare threadHeaps: HeapRegionWalk[];
  declare tcache?: Tcache;
  declare tcacheReason?: string;
  declare mallinfo: Mallinfo;
  declare stable: boolean;
  declare programBreak: bigint;
  declare singleArena: boolean;
  declare checks: MallinfoCheck[];
  declare attempts: number;
  declare steps: StepResult[];

  constructor(data: HeapWalkData) {
    Object.assign(this, data);
  }

  /** The heap as a strip of cells (the terminal strip's cells), a legend, row addresses and sizes, and each heap's totals. */
  toSVG(options?: WalkSVGOptions): string {
    return walkViews.views.svg(this, svgOptions(options));
  }

  /** Self-contained: the SVG, each heap's totals, the tcache and the mallinfo2() checks. */
  toHTML(options?: WalkSVGOptions): string {
    return walkViews.views.html(this, svgOptions(options));
  }

  [inspect.custom](depth: number, options: InspectContext): string {
    return walkViews.views.inspect(this, depth, options);
  }

  /** Deno's Jupyter kernel. */
  [Symbol.for('Jupyter.display')](): MimeBundle {
    return walkViews.views.bundle(this);
  }

  /** ijavascript's display hook. */
  _toMime(): MimeBundle {
    return walkViews.views.bundle(this);
  }
}

/** The strip's shape: whole numbers of cells a row (8 to 4096) and rows (at least 1), own properties only. */
function svgOptions(options: unknown): WalkSVGOptions {
  const o = readOptions(options, 'options', ['columns', 'rows']);
  const columns = o.columns === undefined ? undefined : toIndex(o.columns, 'options.columns', 4096);
  const rows = o.rows === undefined ? undefined : toIndex(o.rows, 'options.rows', 1 << 24);
  if (columns !== undefined && columns < 8) throw rangeError(`options.columns must be at least 8, got ${columns}`);
  if (rows !== undefined && rows < 1) throw rangeError(`options.rows must be at least 1, got ${rows}`);
  // No prototype: the views read these fields, and must not find inherited ones.
  const checked: WalkSVGOptions = Object.create(null);
  if (columns !== undefined) checked.columns = columns;
  if (rows !== undefined) checked.rows = rows;
  return checked;
}

interface Snapshot {
  results: StepResult[];
  before: StepResult[];
  mallinfoBefore: Mallinfo;
  mallinfo: Mallinfo;
  breakBefore: bigint;
  breakAfter: bigint;
  main?: Uint8Array;
  mainError?: number;
  threads: { region: MemoryRegion; bytes?: Uint8Array; errno?: number }[];
}

function snapshot(before: readonly PlanStep[], heap: MemoryRegion | undefined, length: bigint, threadRegions: MemoryRegion[]): Snapshot {
  const steps: PlanStep[] = [...before];
  const m0 = steps.push({ op: 'mallinfo' }) - 1;
  const b0 = steps.push({ op: 'break' }) - 1;
  // One read step holds at most MAX_PLAN_READ bytes; mainWalk says so when [heap] is bigger.
  const mainRead = heap === undefined ? -1 : steps.push({ op: 'read', address: heap.start, length: length < MAX_PLAN_READ ? length : MAX_PLAN_READ }) - 1;
  const reads = threadRegions.map((r) => steps.push({ op: 'read', address: r.start, length: r.size }) - 1);
  const b1 = steps.push({ op: 'break' }) - 1;
  const m1 = steps.push({ op: 'mallinfo' }) - 1;
  const { steps: results } = runPlan(steps);
  const main = mainRead < 0 ? undefined : results[mainRead];
  return {
    results,
    before: results.slice(0, before.length),
    mallinfoBefore: results[m0].mallinfo!,
    mallinfo: results[m1].mallinfo!,
    breakBefore: results[b0].programBreak!,
    breakAfter: results[b1].programBreak!,
    ...(main?.bytes === undefined ? {} : { main: main.bytes }),
    ...(main?.errno === undefined ? {} : { mainError: main.errno }),
    threads: threadRegions.map((region, k) => ({
      region,
      ...(results[reads[k]].bytes === undefined ? {} : { bytes: results[reads[k]].bytes }),
      ...(results[reads[k]].errno === undefined ? {} : { errno: results[reads[k]].errno }),
    })),
  };
}

/**
 * A request whose chunk (1008 bytes) falls in tcache bin 61, near the end
 * where few chunks are cached; handed a 1024-byte free chunk whole it is
 * still a tcache size.
 */
const PROBE_REQUEST = 1000;

const sameMallinfo = (a: Mallinfo, b: Mallinfo): boolean =>
  (Object.keys(a) as (keyof Mallinfo)[]).every((k) => a[k] === b[k]);

function emptyWalk(base: bigint, reason: string): SnapshotWalk {
  return { base, table: { count: 0, offsets: new Float64Array(0), sizes: new Float64Array(0), bits: new Uint8Array(0) }, ending: 'stopped', reason, top: -1, reached: 0 };
}

/**
 * Whether a thread heap's own heap_info claims more than was copied: its
 * arena grew (another thread allocated in it) between reading the maps and
 * the copy.
 */
function outgrownThreadHeaps(s: Snapshot): boolean {
  return s.threads.some(({ region, bytes }) => bytes !== undefined && bytes.length >= 32 && readHeapInfo(bytes, region.start).size > bytes.length);
}

function mainWalk(s: Snapshot, heap: MemoryRegion | undefined): SnapshotWalk {
  if (heap === undefined) return emptyWalk(0n, 'this process has no [heap] region: main_arena has not used sbrk');
  if (s.main === undefined) return emptyWalk(heap.start, `reading [heap] at ${hex(heap.start)} failed (errno ${s.mainError}): it shrank during the snapshot`);
  const walk = walkMainHeap(s.main, heap.start, s.breakAfter);
  if (s.breakAfter - heap.start > MAX_PLAN_READ) {
    return {
      ...walk, ending: 'stopped', top: -1,
      reason: `[heap] is ${bytes(s.breakAfter - heap.start)}; walkHeap reads at most its first ${shortBytes(MAX_PLAN_READ)}, the most one Buffer holds in Node 20`,
    };
  }
  if (s.breakBefore !== s.breakAfter) {
    return { ...walk, ending: 'stopped', top: -1, reason: `the program break moved during the snapshot (${hex(s.breakBefore)} → ${hex(s.breakAfter)})` };
  }
  if (walk.ending === 'top' && walk.table.sizes[walk.top] !== s.mallinfo.keepcost) {
    return {
      ...walk, ending: 'stopped', top: -1,
      reason: `the chunk ending at the break has size ${walk.table.sizes[walk.top]}, but mallinfo2().keepcost (main_arena's top) is ${s.mallinfo.keepcost}`,
    };
  }
  return walk;
}

function validate(options: WalkOptions): { arena: 'main' | 'all'; before: readonly PlanStep[]; attempts: number } {
  const o = readOptions(options, 'options', ['arena', 'before', 'attempts']);
  const arena = o.arena ?? 'main';
  if (arena !== 'main' && arena !== 'all') {
    throw rangeError(`options.arena must be 'main' or 'all', got ${typeof arena === 'string' ? JSON.stringify(arena) : describe(arena)}`);
  }
  const before = o.before === undefined ? [] : readArray(o.before, 'options.before') as PlanStep[];
  const attempts = toIndex(o.attempts ?? 5, 'options.attempts', 100);
  if (attempts < 1) throw rangeError('options.attempts must be at least 1');
  return { arena, before, attempts };
}

/**
 * Walks main_arena's [heap] chunk by chunk from one snapshot taken inside
 * one native call (with mallinfo2 and the program break before and after
 * it), and with `arena: 'all'` every thread-arena heap in the same call.
 * An inconsistent snapshot (another thread changed the heap while it was
 * copied) is retried; if it stays inconsistent, the walk stops with a
 * `reason` and the chunks read so far. The memory is read through
 * process_vm_readv: a bad size can end a walk, never crash the process.
 */
export function walkHeap(options: WalkOptions = {}): HeapWalk {
  const { arena, before, attempts } = validate(options);
  // Off the main thread the tcache struct is found with a probe: a chunk
  // freed into tcache just before the snapshot.
  const probeSteps: PlanStep[] = !isMainThread && arena === 'all'
    ? [{ op: 'malloc', size: PROBE_REQUEST }, { op: 'header', step: before.length }, { op: 'free', step: before.length }] : [];
  const probe = probeSteps.length > 0 ? before.length : undefined;
  const regions = maps();
  const heap = regions.find((r) => r.kind === 'heap');
  let arenaHeaps = regions.filter((r) => r.kind === 'arena-heap');
  let length = heap === undefined ? 0n : programBreak() - heap.start;
  // A walk that tiles to the top is consistent; one during which no arena's
  // totals moved (mallinfo2 the same before and after) is better: try for that.
  let attempt = 0;
  let best: { s: Snapshot; walk: SnapshotWalk; outgrown: boolean } | undefined;
  let chosen: { s: Snapshot; walk: SnapshotWalk };
  for (;;) {
    attempt++;
    const taken = snapshot([...before, ...probeSteps], heap, length > 0n ? length : 0n, arena === 'all' ? arenaHeaps : []);
    const tried = { s: taken, walk: mainWalk(taken, heap) };
    const outgrown = outgrownThreadHeaps(taken);
    // A non-contiguous main_arena's [heap] ends in fenceposts instead of its top.
    const consistent = tried.walk.ending === 'top' || tried.walk.ending === 'fencepost';
    if (consistent && !outgrown && sameMallinfo(taken.mallinfoBefore, taken.mallinfo)) {
      chosen = tried;
      break;
    }
    // Failing that, the first that tiles to the top, whole thread heaps first.
    if (consistent && (best === undefined || (best.outgrown && !outgrown))) best = { ...tried, outgrown };
    // A thread heap that grew after the maps were read is copied again, from fresh maps.
    if (outgrown && attempt < attempts) arenaHeaps = maps().filter((r) => r.kind === 'arena-heap');
    if (attempt >= attempts || (heap === undefined && !outgrown)) {
      chosen = best ?? tried;
      break;
    }
    // The heap may have grown or shrunk since it was measured: read up to the break the snapshot saw.
    if (heap !== undefined && taken.breakAfter > heap.start) length = taken.breakAfter - heap.start;
  }
  const { s, walk } = chosen;

  const threads = s.threads.map(({ region, bytes, errno }) => {
    if (bytes === undefined) return { region, error: `reading the arena heap at ${hex(region.start)} failed (errno ${errno})` };
    return { region, bytes, info: readHeapInfo(bytes, region.start) };
  });
  // Each arena's top lives in the malloc_state of its first heap.
  const tops = new Map<bigint, bigint | undefined>();
  for (const t of threads) if (t.info?.first) tops.set(t.info.arPtr, topFromState(t.bytes!, t.info));
  interface ThreadWalk { region: MemoryRegion; walk: SnapshotWalk; start: number; info?: HeapInfo; bytes?: Uint8Array; reason?: string }
  const threadWalks = threads.map((t): ThreadWalk => {
    if (t.info === undefined) return { region: t.region, walk: emptyWalk(t.region.start, t.error!), start: 0 };
    const result = walkArenaHeap(t.bytes!, t.info, tops.get(t.info.arPtr));
    return { region: t.region, info: t.info, bytes: t.bytes, ...result };
  });
  // tcache lists may run through any arena's heap: read them from the same snapshot where it has them.
  const read = snapshotReader([
    ...(s.main === undefined || heap === undefined ? [] : [{ base: heap.start, bytes: s.main }]),
    ...threadWalks.flatMap((t) => (t.bytes === undefined ? [] : [{ base: t.region.start, bytes: t.bytes }])),
  ]);

  // The calling thread's tcache. The main thread's is the first chunk of [heap]: its first malloc made it there.
  let tcache: Tcache | undefined;
  let tcacheReason: string | undefined;
  if (isMainThread) {
    if (walk.table.count > 0 && isTcacheStructSize(walk.table.sizes[0]) && s.main !== undefined) {
      tcache = decodeTcache(walk.base + BigInt(walk.table.offsets[0]), read);
    } else tcacheReason = 'the first chunk of [heap] is not a tcache_perthread_struct (0x290 or 0x250 bytes)';
  } else if (probe === undefined) {
    tcacheReason = "this is not the main thread: walk with arena: 'all' to find its tcache";
  } else {
    // Another thread's arena may have been this arena's first user, so the
    // struct is found by content: the one whose bin starts with the probe.
    const probed = s.results[probe].address!;
    const bin = (s.results[probe + 1].header!.size - 32) / 16;
    for (const t of [{ walk, bytes: s.main }, ...threadWalks]) {
      if (t.bytes === undefined || tcache !== undefined) continue;
      const { table } = t.walk;
      for (let i = 0; i < table.count && tcache === undefined; i++) {
        if (!isTcacheStructSize(table.sizes[i]) || (table.bits[i] & FREE_BIT) !== 0) continue;
        const candidate = decodeTcache(t.walk.base + BigInt(table.offsets[i]), read);
        if (candidate.bins[bin]?.entries[0] === probed) tcache = candidate;
      }
    }
    if (tcache === undefined) tcacheReason = `no tcache_perthread_struct lists the probe chunk ${hex(probed)} (its bin may have been full)`;
  }
  const tcacheChunks = new Set<bigint>();
  for (const bin of tcache?.bins ?? []) for (const entry of bin.entries) tcacheChunks.add(entry - 16n);
  const marks = { tcacheChunks, ...(tcache === undefined ? {} : { tcacheStruct: tcache.address }) };

  const region = (w: SnapshotWalk, extra: Omit<HeapRegionWalk, 'chunks' | 'complete' | 'totals' | 'top' | 'reason'>, reason?: string): HeapRegionWalk => {
    const { chunks, totals, top } = materialise(w, marks);
    const why = reason ?? w.reason;
    return {
      ...extra, chunks, complete: why === undefined && w.ending !== 'stopped', ...(why === undefined ? {} : { reason: why }),
      ...(top === undefined ? {} : { top }), totals,
    };
  };
  const fenced = walk.ending === 'fencepost'
    ? `[heap] ends at the break in glibc's double fencepost (${hex(walk.base + BigInt(walk.table.offsets[walk.table.count - 2]))}): ` +
      `brk() failed once and main_arena went non-contiguous, so its top chunk (${s.mallinfo.keepcost} bytes, mallinfo2's keepcost) ` +
      'and the chunks carved before it lie in memory glibc took with mmap, which the walk does not read'
    : undefined;
  const main = region(walk, {
    arena: 'main', kind: 'heap', start: heap?.start ?? 0n, end: s.breakAfter,
    firstChunk: walk.base + BigInt(walk.table.count > 0 ? walk.table.offsets[0] : 0),
  }, fenced);
  const threadHeaps = threadWalks.map((t) => region(t.walk, {
    arena: t.info?.arPtr ?? 0n, kind: 'arena-heap', start: t.region.start,
    end: t.region.start + BigInt(t.info?.size ?? 0), ...(t.info === undefined ? {} : { heapInfo: t.info as HeapInfo }),
    firstChunk: t.region.start + BigInt(t.start),
  }, t.reason));

  const singleArena = arenaHeaps.length === 0;
  return new HeapWalk({
    main, threadHeaps, ...(tcache === undefined ? {} : { tcache }), ...(tcacheReason === undefined ? {} : { tcacheReason }),
    mallinfo: s.mallinfo, stable: sameMallinfo(s.mallinfoBefore, s.mallinfo), programBreak: s.breakAfter, singleArena,
    checks: mallinfoChecks(main, s.mallinfo, singleArena), attempts: attempt, steps: s.before.slice(0, before.length),
  });
}
