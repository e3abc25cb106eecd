// The arenas experiment's measurement: the same small mallocs in the main
// thread and in a worker thread, the worker's arena heap as it grows, its
// heap_info, and malloc_info before and while the worker runs.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { offsetOf } from '../../allocator/struct-layout';
import { ChunkHeader } from '../../chunk';
import { HeapscopeError } from '../../errors';
import { mallocInfo, MallocInfo } from '../../malloc-info';
import { maps, MemoryRegion, parseMaps, RegionKind, regionOf } from '../../maps';
import { readMemory } from '../../memory';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { layoutHere } from '../measure';

export type ArenaThread = 'main' | 'worker';

/** One malloc'd chunk and where it lies. */
export interface ArenaChunkRow {
  what: 'chunk';
  thread: ArenaThread;
  /** `first`: the small and medium blocks; `growth`: the 64 KiB blocks that grow the worker's heap. */
  phase: 'first' | 'growth';
  request: number;
  address: bigint;
  header: ChunkHeader;
  region: RegionKind | 'unmapped';
  regionStart?: bigint;
}

/** The worker's arena heap in one maps snapshot: its rw-p part and the ---p reservation behind it. */
export interface ArenaHeapRow {
  what: 'arena-heap';
  /** Inside the worker's plan before and after the growth blocks; `at-read`: when heap_info was read. */
  snapshot: 'before-growth' | 'after-growth' | 'at-read';
  start: bigint;
  /** start modulo 64 MiB, in bytes. */
  misalignment: number;
  rwSize: number;
  reservedSize: number;
  reservedRegions: number;
  /** rwSize + reservedSize. */
  total: number;
  /** mallinfo's `arena` (system bytes of all arenas) at the same step; plan snapshots only. */
  mallinfoArena?: number;
}

/** The first words of the worker's arena heap: glibc's heap_info, then malloc_state's top. */
export interface HeapInfoRow {
  what: 'heap-info';
  start: bigint;
  arPtr: bigint;
  /** arPtr − start. */
  arPtrOffset: number;
  /** arPtr lies in the region's rw part. */
  arPtrInside: boolean;
  prev: bigint;
  size: number;
  mprotectSize: number;
  /** offsetof(struct malloc_state, top) in this glibc, where its layout is known (96 to 2.42, 8 from 2.43). */
  topOffset?: number;
  /** The word at arPtr + topOffset (malloc_state.top), when arPtr was inside. */
  top?: bigint;
  /** The size field of that chunk, flags masked, when it lies in the rw part. */
  topSize?: number;
}

/** One arena of a malloc_info report, before or after the worker ran. */
export interface ArenaReportRow {
  what: 'malloc-info';
  report: 'before' | 'after';
  nr: number;
  aspaceTotal: number;
  aspaceMprotect: number;
  systemCurrent: number;
  subheaps?: number;
  /** After: its mprotected size equals the worker heap's heap_info.mprotect_size. */
  matchesWorker?: boolean;
}

export type ArenaRow = ArenaChunkRow | ArenaHeapRow | HeapInfoRow | ArenaReportRow;

const FIRST = [100, 4000];
export const GROWTH_BLOCK = 64 * 1024;
const GROWTH_BLOCKS = 32;
const HEAP_MAX_SIZE = 64 * 1024 * 1024;
/** sizeof(heap_info) words read: ar_ptr, prev, size, mprotect_size (the same four since glibc 2.26). */
const HEAP_INFO_WORDS = 4;
/**
 * Offset of `top` in malloc_state, from this glibc's layout (mutex, flags
 * and, to 2.42, have_fastchunks and fastbinsY[10] before it); undefined
 * where the layout is not known, and then top is not read.
 */
function topOffset(): number | undefined {
  const layout = layoutHere();
  return layout === undefined ? undefined : offsetOf(layout.mallocState, 'top');
}

// Both lib/experiments/arenas (sources under test) and dist/experiments/arenas
// sit three levels below the package root: the worker always loads the
// compiled plan executor, and only it (the whole package took 90 ms to load,
// the plan's modules 15).
const PLAN = path.resolve(__dirname, '..', '..', '..', 'dist', 'plan.js');

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { runPlan } = require(workerData.plan);
const { steps, kept } = runPlan(workerData.steps, { keep: true });
parentPort.postMessage(steps);
// Stay alive with the chunks allocated until the main thread has read the heap.
parentPort.once('message', () => {
  for (const allocation of kept.values()) allocation.free();
  parentPort.close();
});
`;

interface WorkerLayout {
  first: number[];
  growth: number[];
  before: { maps: number; mallinfo: number };
  after: { maps: number; mallinfo: number };
}

function firstSteps(steps: PlanStep[]): number[] {
  return FIRST.map((size) => {
    const m = steps.push({ op: 'malloc', size }) - 1;
    steps.push({ op: 'header', step: m });
    return m;
  });
}

function workerPlan(): { steps: PlanStep[]; layout: WorkerLayout } {
  const steps: PlanStep[] = [];
  const first = firstSteps(steps);
  const before = { maps: steps.push({ op: 'maps' }) - 1, mallinfo: steps.push({ op: 'mallinfo' }) - 1 };
  const growth = Array.from({ length: GROWTH_BLOCKS }, () => {
    const m = steps.push({ op: 'malloc', size: GROWTH_BLOCK }) - 1;
    steps.push({ op: 'header', step: m });
    return m;
  });
  const after = { maps: steps.push({ op: 'maps' }) - 1, mallinfo: steps.push({ op: 'mallinfo' }) - 1 };
  return { steps, layout: { first, growth, before, after } };
}

/** Runs the plan in a new worker thread; `whileAlive` runs once the plan is done and before the worker frees. */
function inWorker<T>(steps: PlanStep[], whileAlive: (results: StepResult[]) => T): Promise<{ results: StepResult[]; seen: T }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: { plan: PLAN, steps } });
    let outcome: { results: StepResult[]; seen: T } | undefined;
    worker.once('message', (results: StepResult[]) => {
      try {
        outcome = { results, seen: whileAlive(results) };
      } catch (error) {
        reject(error);
      }
      worker.postMessage('free');
    });
    worker.once('error', (error) => {
      reject(new HeapscopeError('ERR_EXPERIMENT_FAILED', `the worker thread failed (it loads ${PLAN}; run \`npx tsc -p .\` first): ${error.message}`));
    });
    worker.once('exit', (code) => {
      if (outcome !== undefined) resolve(outcome);
      else reject(new HeapscopeError('ERR_EXPERIMENT_FAILED', `the worker thread exited with code ${code} before reporting`));
    });
  });
}

function chunkRows(
  thread: ArenaThread, phase: ArenaChunkRow['phase'], mallocs: number[], steps: PlanStep[], results: StepResult[], regions: MemoryRegion[],
): ArenaChunkRow[] {
  return mallocs.filter((m) => results[m].status === 'ok').map((m) => {
    const step = steps[m];
    const address = results[m].address!;
    const region = regionOf(address, regions);
    return {
      what: 'chunk', thread, phase, request: step.op === 'malloc' ? Number(step.size) : 0, address, header: results[m + 1].header!,
      region: region?.kind ?? 'unmapped', ...(region === undefined ? {} : { regionStart: region.start }),
    };
  });
}

/** The arena heap holding `address`: its rw-p region and the arena-reserved regions behind it. */
function arenaHeap(address: bigint, regions: MemoryRegion[]): { rw: MemoryRegion; reserved: MemoryRegion[] } | undefined {
  const rw = regionOf(address, regions);
  if (rw === undefined || rw.kind !== 'arena-heap') return undefined;
  const reserved: MemoryRegion[] = [];
  for (let i = regions.indexOf(rw) + 1; regions[i]?.kind === 'arena-reserved'; i++) reserved.push(regions[i]);
  return { rw, reserved };
}

function heapRow(snapshot: ArenaHeapRow['snapshot'], heap: { rw: MemoryRegion; reserved: MemoryRegion[] }, mallinfoArena?: number): ArenaHeapRow {
  const reservedSize = heap.reserved.reduce((sum, r) => sum + r.size, 0);
  return {
    what: 'arena-heap', snapshot, start: heap.rw.start, misalignment: Number(heap.rw.start % BigInt(HEAP_MAX_SIZE)),
    rwSize: heap.rw.size, reservedSize, reservedRegions: heap.reserved.length, total: heap.rw.size + reservedSize,
    ...(mallinfoArena === undefined ? {} : { mallinfoArena }),
  };
}

function word(buffer: Buffer, index: number): bigint {
  return buffer.readBigUInt64LE(index * 8);
}

/** Reads heap_info and malloc_state.top through readMemory, only where maps says the rw part is. */
function readHeapInfo(rw: MemoryRegion): HeapInfoRow {
  const info = readMemory(rw.start, HEAP_INFO_WORDS * 8);
  const arPtr = word(info, 0);
  const inRw = (address: bigint, length: bigint) => address >= rw.start && address + length <= rw.end;
  const row: HeapInfoRow = {
    what: 'heap-info', start: rw.start, arPtr, arPtrOffset: Number(arPtr - rw.start), arPtrInside: inRw(arPtr, 1n),
    prev: word(info, 1), size: Number(word(info, 2)), mprotectSize: Number(word(info, 3)),
  };
  const at = topOffset();
  if (at !== undefined && inRw(arPtr + BigInt(at), 8n)) {
    const top = word(readMemory(arPtr + BigInt(at), 8), 0);
    row.topOffset = at;
    row.top = top;
    if (inRw(top, 16n)) row.topSize = Number(word(readMemory(top + 8n, 8), 0) & ~7n);
  }
  return row;
}

function reportRows(report: ArenaReportRow['report'], info: MallocInfo, mprotectSize?: number): ArenaReportRow[] {
  return info.arenas.map((a) => ({
    what: 'malloc-info', report, nr: a.nr, aspaceTotal: a.aspaceTotal, aspaceMprotect: a.aspaceMprotect,
    systemCurrent: a.systemCurrent, ...(a.subheaps === undefined ? {} : { subheaps: a.subheaps }),
    ...(mprotectSize === undefined ? {} : { matchesWorker: a.subheaps !== undefined && a.aspaceMprotect === mprotectSize }),
  }));
}

export async function measure(): Promise<ArenaRow[]> {
  const mainSteps: PlanStep[] = [];
  const mainFirst = firstSteps(mainSteps);
  const mainMaps = mainSteps.push({ op: 'maps' }) - 1;
  const { steps: mainResults } = runPlan(mainSteps);

  const before = mallocInfo();
  const { steps, layout } = workerPlan();
  const { results, seen } = await inWorker(steps, (r) => {
    // Read while the worker sits idle with its chunks still allocated: the
    // map now, then heap_info, then glibc's report.
    const now = maps();
    const heap = arenaHeap(r[layout.first[0]].address!, now);
    const info = heap === undefined ? undefined : readHeapInfo(heap.rw);
    return { heap, info, after: mallocInfo() };
  });

  const rows: ArenaRow[] = [];
  rows.push(...chunkRows('main', 'first', mainFirst, mainSteps, mainResults, parseMaps(mainResults[mainMaps].maps!)));
  const beforeRegions = parseMaps(results[layout.before.maps].maps!);
  const afterRegions = parseMaps(results[layout.after.maps].maps!);
  rows.push(...chunkRows('worker', 'first', layout.first, steps, results, afterRegions));
  rows.push(...chunkRows('worker', 'growth', layout.growth, steps, results, afterRegions));
  const small = results[layout.first[0]].address!;
  const heapBefore = arenaHeap(small, beforeRegions);
  const heapAfter = arenaHeap(small, afterRegions);
  if (heapBefore !== undefined) rows.push(heapRow('before-growth', heapBefore, results[layout.before.mallinfo].mallinfo!.arena));
  if (heapAfter !== undefined) rows.push(heapRow('after-growth', heapAfter, results[layout.after.mallinfo].mallinfo!.arena));
  if (seen.heap !== undefined) rows.push(heapRow('at-read', seen.heap));
  if (seen.info !== undefined) rows.push(seen.info);
  rows.push(...reportRows('before', before), ...reportRows('after', seen.after, seen.info?.mprotectSize));
  return rows;
}
