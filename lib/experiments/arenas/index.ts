// Where is a heap object when another thread allocates it?
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ChunkHeader } from '../../chunk';
import { HeapscopeError } from '../../errors';
import { bytes, hex } from '../../format';
import { mallocInfo, MallocInfo } from '../../malloc-info';
import { maps, MemoryRegion, parseMaps, RegionKind, regionOf } from '../../maps';
import { readMemory } from '../../memory';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { Experiment } from '../types';

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
  /** The word at arPtr + TOP_OFFSET (malloc_state.top), when arPtr was inside. */
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
const GROWTH_BLOCK = 64 * 1024;
const GROWTH_BLOCKS = 32;
const HEAP_MAX_SIZE = 64 * 1024 * 1024;
/** sizeof(heap_info) words read: ar_ptr, prev, size, mprotect_size (the same four since glibc 2.26). */
const HEAP_INFO_WORDS = 4;
/**
 * Offset of `top` in malloc_state (glibc ≥ 2.27): mutex, flags and
 * have_fastchunks (3 ints, padded to 16), then fastbinsY[10].
 */
const TOP_OFFSET = 16n + 10n * 8n;

// Both lib/experiments/arenas (sources under test) and dist/experiments/arenas
// sit three levels below the package root, whose package.json main is
// dist/index.js: the worker always loads the compiled package.
const ROOT = path.resolve(__dirname, '..', '..', '..');

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { runPlan } = require(workerData.root);
const { steps, kept } = runPlan(workerData.plan, { keep: true });
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
    const worker = new Worker(WORKER, { eval: true, workerData: { root: ROOT, plan: steps } });
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
      reject(new HeapscopeError('ERR_EXPERIMENT_FAILED', `the worker thread failed (it loads ${ROOT}; run \`npx tsc -p .\` first): ${error.message}`));
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
  if (inRw(arPtr + TOP_OFFSET, 8n)) {
    const top = word(readMemory(arPtr + TOP_OFFSET, 8), 0);
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

async function measure(): Promise<ArenaRow[]> {
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

const raw = (rows: ArenaChunkRow[]): string => rows.map((r) => `${r.request} B → ${hex(r.header.rawSize)}`).join(', ');

function describeRows(rows: ArenaRow[]): { findings: string[]; surprises: string[] } {
  const findings: string[] = [];
  const surprises: string[] = [];
  const chunks = rows.filter((r): r is ArenaChunkRow => r.what === 'chunk');
  const main = chunks.filter((r) => r.thread === 'main');
  const worker = chunks.filter((r) => r.thread === 'worker' && r.phase === 'first');
  const growth = chunks.filter((r) => r.thread === 'worker' && r.phase === 'growth');

  const workerA = worker.filter((r) => r.header.nonMainArena);
  const mainA = main.filter((r) => r.header.nonMainArena);
  findings.push(
    `The worker thread's chunks had the A bit (NON_MAIN_ARENA, 0x4) set in ${workerA.length} of ${worker.length} size words (${raw(worker)}); ` +
      `the main thread's chunks of the same requests had it set in ${mainA.length} of ${main.length} (${raw(main)}).`,
  );
  if (workerA.length < worker.length || mainA.length > 0) {
    surprises.push(`The A bit did not split the chunks by thread: worker ${workerA.length} of ${worker.length}, main ${mainA.length} of ${main.length}.`);
  }
  const places = [...new Set(main.map((r) => `${r.region} at ${r.regionStart === undefined ? '?' : hex(r.regionStart)}`))];
  findings.push(`The main thread's ${main.length} chunks lay in ${places.join(' and ')}.`);

  const heaps = rows.filter((r): r is ArenaHeapRow => r.what === 'arena-heap');
  const beforeGrowth = heaps.find((r) => r.snapshot === 'before-growth');
  const afterGrowth = heaps.find((r) => r.snapshot === 'after-growth');
  const atRead = heaps.find((r) => r.snapshot === 'at-read');
  // The first chunks were malloc'd before the first snapshot: describe the heap as they found it.
  const home = beforeGrowth ?? afterGrowth;
  if (home === undefined) {
    findings.push(`The worker's first chunk lay in a region of kind ${worker[0]?.region ?? 'unknown'}, not an arena-heap: no 64 MiB arena heap to measure.`);
  } else {
    findings.push(
      `The worker's chunks lay in an arena-heap region at ${hex(home.start)}, ` +
        (home.misalignment === 0 ? 'a multiple of 64 MiB' : `${home.misalignment} bytes past a 64 MiB boundary`) +
        `: ${bytes(home.rwSize)} rw-p, then ${bytes(home.reservedSize)} ---p in ${home.reservedRegions} arena-reserved region(s), ${bytes(home.total)} in all.`,
    );
    const inHome = growth.filter((r) => r.regionStart === home.start).length;
    const growthA = growth.filter((r) => r.header.nonMainArena).length;
    const mapped = growth.filter((r) => r.header.isMmapped).length;
    findings.push(
      `Of the ${growth.length} blocks of ${bytes(GROWTH_BLOCK)} malloc'd next in the worker, ${growthA} had the A bit, ${mapped} were mmapped ` +
        `and ${inHome} lay in that same region.`,
    );
  }
  if (beforeGrowth !== undefined && afterGrowth !== undefined) {
    const grew = afterGrowth.rwSize - beforeGrowth.rwSize;
    const system = (afterGrowth.mallinfoArena ?? 0) - (beforeGrowth.mallinfoArena ?? 0);
    const same = afterGrowth.start === beforeGrowth.start;
    findings.push(
      grew > 0
        ? `Those blocks grew the rw-p part from ${bytes(beforeGrowth.rwSize)} to ${bytes(afterGrowth.rwSize)} (+${bytes(grew)}) while the ---p part went ` +
          `from ${bytes(beforeGrowth.reservedSize)} to ${bytes(afterGrowth.reservedSize)}: the whole stayed ${bytes(afterGrowth.total)}` +
          `${same ? ' at the same start' : `, but the start moved from ${hex(beforeGrowth.start)} to ${hex(afterGrowth.start)}`}, ` +
          'so the heap grew by turning reserved pages read-write, not by mapping new memory.'
        : `The rw-p part stayed at ${bytes(afterGrowth.rwSize)} (it was ${bytes(beforeGrowth.rwSize)}): the blocks fit in memory the heap already had.`,
    );
    findings.push(
      `Over the same steps mallinfo's arena (system bytes of all arenas) went from ${beforeGrowth.mallinfoArena} to ${afterGrowth.mallinfoArena} ` +
        `(${system >= 0 ? '+' : ''}${system}${system === grew ? ', exactly the rw-p growth' : `, against ${grew} of rw-p growth`}).`,
    );
    if (afterGrowth.total !== beforeGrowth.total) {
      surprises.push(`The arena heap's reservation changed size while it grew: ${beforeGrowth.total} → ${afterGrowth.total} bytes.`);
    }
  }

  const info = rows.find((r): r is HeapInfoRow => r.what === 'heap-info');
  if (info !== undefined) {
    const mprotectAgrees = atRead !== undefined && atRead.rwSize === info.mprotectSize;
    findings.push(
      `The region's first words (heap_info), read while the worker waited: ar_ptr = ${hex(info.arPtr)}, ${info.arPtrOffset} bytes into the region ` +
        (info.arPtrInside ? '(inside its rw-p part: the arena\'s malloc_state lives in its own heap)' : '(outside the region)') +
        `; prev = ${hex(info.prev)}${info.prev === 0n ? ' (no earlier heap)' : ''}; size = ${info.size}; mprotect_size = ${info.mprotectSize}` +
        (atRead === undefined ? '.' : mprotectAgrees
          ? `, equal to the rw-p part in the map read at that moment.`
          : `, while the map read at that moment showed ${atRead.rwSize} bytes rw-p.`),
    );
    if (!info.arPtrInside) surprises.push(`heap_info's ar_ptr ${hex(info.arPtr)} does not lie in the heap's rw-p part starting at ${hex(info.start)}.`);
    if (info.top !== undefined && info.topSize !== undefined) {
      const topEnd = info.top + BigInt(info.topSize);
      const endOffset = Number(topEnd - info.start);
      findings.push(
        `malloc_state.top (the word at ar_ptr + ${TOP_OFFSET}) = ${hex(info.top)}, ${Number(info.top - info.start)} bytes into the region; ` +
          `that chunk's size field says ${info.topSize} bytes, so it ends ${endOffset} bytes into the region` +
          (endOffset === info.size ? ', exactly at heap_info.size: the arena carves from its own top chunk at the end of its heap\'s used part.' : `, while heap_info.size is ${info.size}.`),
      );
    }
  }

  const reports = rows.filter((r): r is ArenaReportRow => r.what === 'malloc-info');
  const before = reports.filter((r) => r.report === 'before').length;
  const after = reports.filter((r) => r.report === 'after');
  const matched = after.filter((r) => r.matchesWorker === true);
  findings.push(
    `malloc_info listed ${before} arenas before the worker started and ${after.length} while it ran; ` +
      (matched.length === 1
        ? `heap nr=${matched[0].nr} (${matched[0].aspaceMprotect} bytes mprotected) matches the worker heap's mprotect_size.`
        : `${matched.length} of them have an mprotected size equal to the worker heap's mprotect_size${info === undefined ? ' (not read)' : ` (${info.mprotectSize})`}.`),
  );
  const added = after.length - before;
  if (added === 0) {
    surprises.push(`Starting a worker thread left malloc_info's arena count at ${before}: the worker was given an arena that already existed.`);
  } else if (added !== 1) {
    surprises.push(
      `Starting one worker thread took malloc_info from ${before} to ${after.length} arenas, ${added} more, not 1: ` +
        `only ${matched.length === 1 ? `nr=${matched[0].nr}` : 'one of them'} is tied to the worker (by heap_info's mprotect_size); ` +
        `the other ${added - 1} appeared over the same time, in threads these numbers do not identify.`,
    );
  }
  return { findings, surprises };
}

export const arenas: Experiment<ArenaRow, 'arenas'> = {
  name: 'arenas',
  question: 'Where is a heap object when another thread allocates it?',
  // It starts a thread, and a thread's arena stays in the process forever.
  isolatedByDefault: true,
  async run() {
    const rows = await measure();
    return { rows, ...describeRows(rows) };
  },
};
