// The free experiment's measurement: four cases, each in its own plan whose
// every action is followed by readings of the break and mallinfo.
//
// A small chunk (kept by malloc for the next request), a run of blocks freed
// into the top chunk (the break comes down once the top is big enough),
// scattered free chunks that only malloc_trim hands back (RSS falls, the
// break stays), and an mmapped chunk (unmapped at once). The mmapped case
// runs last: although its 64 MiB chunk is above the ceiling of the dynamic
// mmap threshold, so freeing it moves nothing, the order keeps the other
// cases independent of it anyway.
import { blockedBreak } from '../../break-room';
import { CHUNK_HEADER_SIZE } from '../../chunk';
import { MemoryRegion, parseMaps } from '../../maps';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { pageSize } from '../../stats';
import { AddressRange, diffMaps, FreeRunRow, layoutHere, mallocPar, measureFreeRun, rangeHolding, trimSummary } from '../measure';

const KiB = 1024;
const MiB = 1024 * KiB;
/** (a) A fastbin- and tcache-sized request. */
export const SMALL = 48;
/**
 * (a) Mallocs of the same size first: they use up the free chunks of that
 * size, which malloc moves into the tcache bin whenever it takes one from a
 * fastbin or smallbin, so that the bin has room when the probe is freed.
 */
export const DRAIN = 100;
/** (b) Above any threshold the dynamic mmap threshold can reach (32 MiB). */
export const MMAPPED = 64 * MiB;
/** (c) Blocks above the largest tcache chunk (1040 bytes), so that each free merges into the top. */
export const RUN_BLOCK = 4 * KiB;
export const RUN_COUNT = 512;
/** (d) Scattered blocks, each followed by a live guard so they cannot merge into the top. */
export const SCATTERED = 16 * KiB;
export const SCATTERED_COUNT = 200;
export const GUARD = 2000;
/** A malloc_trim pad larger than any top chunk here: only the MADV_DONTNEED part can act. */
export const BIG_PAD = 1 << 30;

export type FreePhase = 'small' | 'mmapped' | 'malloc-trim';

export interface FreeStepRow {
  kind: 'step';
  phase: FreePhase;
  op: 'start' | 'malloc' | 'free' | 'trim';
  /** What the block is for: `drain`, `probe`, `again` (a); `chunk` (b); `block`, `guard` (d); '' for start and trim rows. */
  role: string;
  request?: number;
  address?: bigint;
  chunkSize?: number;
  mmapped?: boolean;
  /** trim rows: malloc_trim's pad and whether it said it released memory. */
  pad?: number;
  released?: boolean;
  /** State right after the step. */
  programBreak: bigint;
  /** main_arena's top chunk (mallinfo keepcost). */
  top: number;
  /** mallinfo uordblks, fordblks, fsmblks, hblkhd: bytes in use (tcache included), free, in fastbins, in mmapped chunks. */
  inUse: number;
  freeBytes: number;
  fastbinBytes: number;
  mmappedBytes: number;
  /** malloc-trim rows: the process's resident set, in pages. */
  rssPages?: number;
  /** mmapped rows: whether a mapping covered the chunk after the step. */
  chunkMapped?: boolean;
}

export interface FreeRunStepRow extends FreeRunRow {
  phase: 'trim-on-free';
}

export type FreeRow = FreeStepRow | FreeRunStepRow;

interface Mark {
  op: FreeStepRow['op'];
  role: string;
  /** The malloc step of the block this row is about. */
  block?: number;
  trim?: number;
  /** The first of the observing steps: break, mallinfo, then statm or maps. */
  at: number;
}

/** A plan whose every action is followed by readings of the break, mallinfo and optionally statm or the maps. */
class Recorder {
  readonly steps: PlanStep[] = [];
  readonly marks: Mark[] = [];

  constructor(private readonly phase: FreePhase, private readonly extra?: 'statm' | 'maps') {}

  add(step: PlanStep): number {
    return this.steps.push(step) - 1;
  }

  observe(op: Mark['op'], role: string, block?: number, trim?: number): void {
    const at = this.add({ op: 'break' });
    this.add({ op: 'mallinfo' });
    if (this.extra !== undefined) this.add({ op: this.extra });
    this.marks.push({ op, role, block, trim, at });
  }

  malloc(role: string, size: number, touch = false): number {
    const block = this.add({ op: 'malloc', size });
    this.add({ op: 'header', step: block });
    if (touch) this.add({ op: 'touch', step: block });
    this.observe('malloc', role, block);
    return block;
  }

  free(role: string, block: number): void {
    this.add({ op: 'free', step: block });
    this.observe('free', role, block);
  }

  trim(pad: number): void {
    this.observe('trim', '', undefined, this.add({ op: 'trim', pad }));
  }

  run(): { rows: FreeStepRow[]; results: StepResult[] } {
    const { steps: r } = runPlan(this.steps);
    const rows = this.marks.map((m): FreeStepRow => {
      const info = r[m.at + 1].mallinfo!;
      const row: FreeStepRow = {
        kind: 'step',
        phase: this.phase,
        op: m.op,
        role: m.role,
        programBreak: r[m.at].programBreak!,
        top: info.keepcost,
        inUse: info.uordblks,
        freeBytes: info.fordblks,
        fastbinBytes: info.fsmblks,
        mmappedBytes: info.hblkhd,
      };
      if (m.block !== undefined) {
        const header = r[m.block + 1].header!;
        const step = this.steps[m.block];
        row.request = step.op === 'malloc' ? Number(step.size) : undefined;
        row.address = r[m.block].address!;
        row.chunkSize = header.size;
        row.mmapped = header.isMmapped;
      }
      if (m.trim !== undefined) {
        const step = this.steps[m.trim];
        row.pad = step.op === 'trim' ? Number(step.pad ?? 0) : undefined;
        row.released = r[m.trim].released;
      }
      if (this.extra === 'statm') row.rssPages = r[m.at + 2].rssPages;
      return row;
    });
    return { rows, results: r };
  }
}

/** (a) A small free: the chunk waits in malloc for the next request of its size. */
function smallOnce(): FreeStepRow[] {
  const rec = new Recorder('small');
  rec.observe('start', '');
  for (let i = 0; i < DRAIN; i++) rec.malloc('drain', SMALL);
  const probe = rec.malloc('probe', SMALL);
  rec.free('probe', probe);
  rec.malloc('again', SMALL);
  return rec.run().rows;
}

/** Runs of (a) to try for one where nothing but the probe reached its bin between the free and the malloc. */
const SMALL_ATTEMPTS = 3;

/** (a) An earlier run whose malloc again returned another chunk than the probe it had just freed. */
export interface SmallMiss {
  probe: bigint;
  again: bigint;
}

/**
 * (a), measured again (up to three runs) when the malloc after the free
 * returned another chunk: with the tcache off the probe waits in main_arena's
 * fastbin, where any thread's free of a chunk that size lands too, on top of it.
 */
function small(): { rows: FreeStepRow[]; missed: SmallMiss[] } {
  const missed: SmallMiss[] = [];
  for (let attempt = 1; ; attempt++) {
    const rows = smallOnce();
    const probe = rows.find((r) => r.role === 'probe')!.address!;
    const again = rows[rows.length - 1].address!;
    if (again === probe || attempt >= SMALL_ATTEMPTS) return { rows, missed };
    missed.push({ probe, again });
  }
}

/** (c) What the free run measured besides its rows. */
export interface FreeRun {
  /** The runs measured; each earlier one merged too few blocks into the top (how many: `missed`). */
  attempts: number;
  missed: number[];
  breakAtStart: bigint;
  /** After the last block was allocated, before the first free. */
  breakAllocated: bigint;
  /** When the break never moved down, read right after the run: why brk() was refused, or else mp_.trim_threshold. */
  blocked?: string;
  trimThreshold?: bigint;
}

/** (c) A run of blocks freed newest first into the top chunk. */
function trimOnFree(): { rows: FreeRunStepRow[]; run: FreeRun } {
  const run = measureFreeRun(RUN_COUNT, RUN_BLOCK);
  const rows: FreeRunStepRow[] = run.rows.map((r) => ({ ...r, phase: 'trim-on-free' as const }));
  const measured: FreeRun = { attempts: run.attempts, missed: run.missed, breakAtStart: run.breakAtStart, breakAllocated: run.breakAllocated };
  // Only when the break never came down, and before the next plan: the cause
  // (each reading costs a snapshot of glibc's state).
  if (trimSummary(rows).firstTrim === undefined) {
    measured.blocked = blockedBreak();
    if (measured.blocked === undefined) measured.trimThreshold = mallocPar().trimThreshold;
  }
  return { rows, run: measured };
}

/** (d) Scattered free chunks: only malloc_trim gives their pages back. */
function mallocTrim(): FreeStepRow[] {
  const rec = new Recorder('malloc-trim', 'statm');
  // Hands back what the process's other free chunks hold first, so that the trim below measures these blocks.
  rec.trim(BIG_PAD);
  const blocks: number[] = [];
  for (let i = 0; i < SCATTERED_COUNT; i++) {
    blocks.push(rec.malloc('block', SCATTERED, true));
    rec.malloc('guard', GUARD);
  }
  for (const b of blocks) rec.free('block', b);
  rec.trim(BIG_PAD);
  rec.trim(0);
  return rec.run().rows;
}

/** (b) The mapping that appeared with the mmapped chunk, and the one its free took away. */
export interface Unmapping {
  grew?: AddressRange;
  gone?: AddressRange;
}

/** (b) An mmapped chunk: free unmaps it. */
function mmapped(): { rows: FreeStepRow[]; unmapping: Unmapping } {
  const rec = new Recorder('mmapped', 'maps');
  rec.observe('start', '');
  const chunk = rec.malloc('chunk', MMAPPED);
  rec.free('chunk', chunk);
  const { rows, results } = rec.run();
  const maps = rec.marks.map((m) => parseMaps(results[m.at + 2].maps!));
  const [start, allocated, freed] = rows;
  const address = allocated.address!;
  const holding = (regions: MemoryRegion[]) => regions.some((r) => r.start <= address - CHUNK_HEADER_SIZE && address < r.end);
  allocated.chunkMapped = holding(maps[1]);
  freed.chunkMapped = holding(maps[2]);
  start.chunkMapped = holding(maps[0]);
  const grew = rangeHolding(diffMaps(maps[0], maps[1]).mapped, address);
  const gone = rangeHolding(diffMaps(maps[1], maps[2]).unmapped, address);
  return { rows, unmapping: { grew, gone } };
}

/** What a run measured: the rows of the four cases, what the free run and the mmapped case saw besides, the page size. */
export interface Measured {
  rows: FreeRow[];
  /** (a) Earlier runs whose malloc again returned another chunk; empty when the first was kept. */
  smallMissed: SmallMiss[];
  run: FreeRun;
  unmapping: Unmapping;
  page: number;
  /** The release, where its layout says it has no fastbins (2.43 on): mallinfo's fastbin bytes then say nothing. */
  noFastbins?: string;
}

export function measure(): Measured {
  const { rows: smallRows, missed: smallMissed } = small();
  const rows: FreeRow[] = smallRows;
  const { rows: runRows, run } = trimOnFree();
  const page = pageSize();
  const trimmed = mallocTrim();
  const { rows: unmapped, unmapping } = mmapped();
  rows.push(...runRows, ...trimmed, ...unmapped);
  const layout = layoutHere();
  return { rows, smallMissed, run, unmapping, page, ...(layout !== undefined && !layout.fastbins ? { noFastbins: layout.version } : {}) };
}
