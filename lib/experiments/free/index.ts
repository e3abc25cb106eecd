// Does free give memory back to the kernel?
//
// Four cases, each in its own plan: a small chunk (kept by malloc for the
// next request), a run of blocks freed into the top chunk (the break comes
// down once the top is big enough), scattered free chunks that only
// malloc_trim hands back (RSS falls, the break stays), and an mmapped chunk
// (unmapped at once). The mmapped case runs last: although its 64 MiB chunk
// is above the ceiling of the dynamic mmap threshold, so freeing it moves
// nothing, the order keeps the other cases independent of it anyway.
import { blockedBreak } from '../../break-room';
import { CHUNK_HEADER_SIZE } from '../../chunk';
import { hex, shortBytes, withArticle } from '../../format';
import { MemoryRegion, parseMaps } from '../../maps';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { pageSize } from '../../stats';
import { diffMaps, FreeRunRow, freeRunPlan, mallocPar, rangeHolding, trimSummary } from '../measure';
import { Experiment } from '../types';

const KiB = 1024;
const MiB = 1024 * KiB;
/** (a) A fastbin- and tcache-sized request. */
const SMALL = 48;
/**
 * (a) Mallocs of the same size first: they use up the free chunks of that
 * size, which malloc moves into the tcache bin whenever it takes one from a
 * fastbin or smallbin, so that the bin has room when the probe is freed.
 */
const DRAIN = 100;
/** (b) Above any threshold the dynamic mmap threshold can reach (32 MiB). */
const MMAPPED = 64 * MiB;
/** (c) Blocks above the largest tcache chunk (1040 bytes), so that each free merges into the top. */
const RUN_BLOCK = 4 * KiB;
const RUN_COUNT = 512;
/** (d) Scattered blocks, each followed by a live guard so they cannot merge into the top. */
const SCATTERED = 16 * KiB;
const SCATTERED_COUNT = 200;
const GUARD = 2000;
/** A malloc_trim pad larger than any top chunk here: only the MADV_DONTNEED part can act. */
const BIG_PAD = 1 << 30;
/** sizeof(struct malloc_chunk) on 64-bit: malloc_trim spares the header and list pointers of a free chunk. */
const FREE_CHUNK_HEADER = 48;

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
function freedRow(rows: FreeStepRow[]): { before: number; after: number } {
  const at = rows.findIndex((r) => r.op === 'free');
  return { before: rows[at - 1].fastbinBytes, after: rows[at].fastbinBytes };
}

function small(findings: string[], surprises: string[]): FreeStepRow[] {
  const rec = new Recorder('small');
  rec.observe('start', '');
  for (let i = 0; i < DRAIN; i++) rec.malloc('drain', SMALL);
  const probe = rec.malloc('probe', SMALL);
  rec.free('probe', probe);
  rec.malloc('again', SMALL);
  const { rows } = rec.run();
  const [before, freed, again] = rows.slice(-3);
  const first = rows.find((r) => r.role === 'probe')!;
  if (again.address === first.address) {
    findings.push(
      `free() of ${withArticle(first.chunkSize!)}-byte chunk (malloc(${SMALL}) at ${hex(first.address!)}, after ${DRAIN} mallocs of the same size) kept it in malloc: ` +
        `the next malloc(${SMALL}) returned the same address.`,
    );
  } else {
    surprises.push(
      `After free() of malloc(${SMALL}) at ${hex(first.address!)} (after ${DRAIN} mallocs of the same size), the next malloc(${SMALL}) ` +
        `returned ${hex(again.address!)}, another chunk; at the free, mallinfo's fastbin bytes went ${freedRow(rows).before} → ${freedRow(rows).after}.`,
    );
  }
  const breaks = new Set([before.programBreak, freed.programBreak, again.programBreak]);
  findings.push(
    breaks.size === 1
      ? `The break stayed at ${hex(freed.programBreak)} through the malloc, the free and the malloc again.`
      : `The break moved during the small malloc/free/malloc: ${[...breaks].map(hex).join(' → ')}.`,
  );
  const fast = freed.fastbinBytes - before.fastbinBytes;
  const used = freed.inUse - before.inUse;
  if (fast === 0 && used === 0) {
    findings.push(
      `At that free, mallinfo's fastbin bytes stayed at ${freed.fastbinBytes} and its in-use bytes did not drop (${before.inUse} → ${freed.inUse}): ` +
        'the chunk went to no bin but was held as if in use, in the thread\'s tcache.',
    );
  } else {
    findings.push(
      `At that free, mallinfo's fastbin bytes went ${before.fastbinBytes} → ${freed.fastbinBytes} and its in-use bytes ${before.inUse} → ${freed.inUse}` +
        (fast >= first.chunkSize! ? ': the chunk went to a fastbin.' : '.'),
    );
  }
  return rows;
}

/** Runs to try for one whose blocks come from the top chunk. */
const RUN_ATTEMPTS = 3;

/** (c) A run of blocks freed newest first into the top chunk. */
function trimOnFree(findings: string[]): FreeRunStepRow[] {
  // The fillers are sized from malloc_info taken just before the plan; a
  // large chunk freed in between (V8 releasing memory) can still serve the
  // run, whose blocks then never reach the top. Such a run is measured again,
  // with fresh fillers, and the finding says how many runs it took.
  let attempt = 0;
  let run: ReturnType<ReturnType<typeof freeRunPlan>['read']>;
  let rows: FreeRunStepRow[];
  let beside: number;
  const missed: number[] = [];
  for (;;) {
    attempt++;
    const plan = freeRunPlan(RUN_COUNT, RUN_BLOCK);
    run = plan.read(runPlan(plan.steps).steps);
    rows = run.rows.map((r) => ({ ...r, phase: 'trim-on-free' as const }));
    beside = rows.filter((r) => r.besideTop).length;
    if (beside >= rows.length / 2 || attempt >= RUN_ATTEMPTS) break;
    missed.push(beside);
  }
  const t = trimSummary(rows);
  const end = rows[rows.length - 1];
  if (missed.length > 0) {
    findings.push(
      `Run${missed.length > 1 ? 's' : ''} 1${missed.length > 1 ? `–${missed.length}` : ''} of ${RUN_COUNT} blocks merged only ` +
        `${missed.join(', ')} of them into the top chunk (the rest had come from a free chunk below it), so the run was measured again; run ${attempt} is shown.`,
    );
  }
  findings.push(
    `Allocating ${RUN_COUNT} blocks of ${shortBytes(RUN_BLOCK)} (${rows[0].chunkSize}-byte chunks) moved the break from ${hex(run.breakAtStart)} to ` +
      `${hex(run.breakAllocated)} (+${Number(run.breakAllocated - run.breakAtStart)} bytes); freeing them newest first, ` +
      `${beside} of them merged into the top chunk.`,
  );
  if (t.firstTrim === undefined) {
    const blocked = blockedBreak();
    findings.push(
      `The break never moved down while they were freed: not observed. The top reached ${Math.max(...rows.map((r) => r.topAfter))} bytes ` +
        `and the break ended at ${hex(end.breakAfter)}` +
        (blocked !== undefined ? `: ${blocked}.` : `; mp_.trim_threshold, read after the run, is ${mallocPar().trimThreshold} bytes.`),
    );
    return rows;
  }
  const f = t.firstTrim;
  findings.push(
    `The break first moved down at the free of block ${f.block}, when merging it made the top ${f.mergedTop} bytes ` +
      `(it had been ${f.topBefore}): from ${hex(f.breakBefore)} to ${hex(f.breakAfter)}, ${f.returned} bytes returned, leaving ${withArticle(f.topAfter)}-byte top. ` +
      `Tops of up to ${t.keptTop ?? 0} bytes had stayed.`,
  );
  findings.push(
    `Over the whole run the break moved down ${t.trims} times by ${t.returned} bytes in all, from ${hex(run.breakAllocated)} to ${hex(end.breakAfter)}` +
      ` (${Number(end.breakAfter - run.breakAtStart)} bytes from where it started), with ${withArticle(end.topAfter)}-byte top left.`,
  );
  return rows;
}

/** Whole pages malloc_trim can hand back inside a free chunk: past its header and list pointers, up to its end. */
function wholePages(chunk: bigint, size: number, page: number): number {
  const p = BigInt(page);
  const first = ((chunk + BigInt(FREE_CHUNK_HEADER) + p - 1n) / p) * p;
  const end = chunk + BigInt(size);
  return end > first ? Number((end - first) / p) : 0;
}

/** (d) Scattered free chunks: only malloc_trim gives their pages back. */
function mallocTrim(findings: string[], surprises: string[]): FreeStepRow[] {
  const page = pageSize();
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
  const { rows } = rec.run();
  const start = rows[0];
  const allocated = rows[rows.length - 2 - SCATTERED_COUNT - 1];
  const freed = rows[rows.length - 3];
  const [padded, zero] = rows.slice(-2);
  const blockRows = rows.filter((r) => r.op === 'malloc' && r.role === 'block');
  const pages = blockRows.reduce((sum, r) => sum + wholePages(r.address! - CHUNK_HEADER_SIZE, r.chunkSize!, page), 0);
  findings.push(
    `After a first malloc_trim(${BIG_PAD}), ${SCATTERED_COUNT} blocks of ${shortBytes(SCATTERED)}, each written through and followed by a live ${GUARD}-byte guard: ` +
      `RSS went ${start.rssPages} → ${allocated.rssPages} pages and the break ${hex(start.programBreak)} → ${hex(allocated.programBreak)}.`,
  );
  const lastGuard = rows.filter((r) => r.role === 'guard').pop()!;
  const guardEnd = lastGuard.address! - CHUNK_HEADER_SIZE + BigInt(lastGuard.chunkSize!);
  findings.push(
    `Freeing the ${SCATTERED_COUNT} blocks changed RSS ${allocated.rssPages} → ${freed.rssPages} pages and left the break at ${hex(freed.programBreak)} ` +
      `(top ${freed.top} bytes${guardEnd === freed.programBreak - BigInt(freed.top) ? ', right above the last live guard' : ''}).`,
  );
  const drop = freed.rssPages! - padded.rssPages!;
  const breakText = padded.programBreak === freed.programBreak
    ? `while the break stayed at ${hex(padded.programBreak)}`
    : `and the break moved ${hex(freed.programBreak)} → ${hex(padded.programBreak)}`;
  if (drop > 0) {
    findings.push(
      `malloc_trim(${BIG_PAD}) (a pad above the ${freed.top}-byte top, so the top stays) returned ${padded.released ? 1 : 0}: RSS fell by ${drop} pages ` +
        `(${shortBytes(drop * page)}) ${breakText}. The freed blocks held ${pages} whole pages past their headers; ` +
        `mallinfo counted ${freed.freeBytes - freed.top} free bytes in all arenas outside main_arena's top, ${blockRows.reduce((sum, r) => sum + r.chunkSize!, 0)} of them in the blocks.`,
    );
  } else {
    surprises.push(
      `malloc_trim(${BIG_PAD}) returned ${padded.released ? 1 : 0} but RSS did not fall (${freed.rssPages} → ${padded.rssPages} pages) ${breakText}, ` +
        `although the freed chunks held ${pages} whole pages past their headers.`,
    );
  }
  findings.push(
    `malloc_trim(0) then ${zero.programBreak < padded.programBreak ? `moved the break down by ${Number(padded.programBreak - zero.programBreak)} bytes` : 'left the break where it was'} ` +
      `(top ${padded.top} → ${zero.top} bytes; RSS ${padded.rssPages} → ${zero.rssPages} pages).`,
  );
  return rows;
}

/** (b) An mmapped chunk: free unmaps it. */
function mmapped(findings: string[], surprises: string[]): FreeStepRow[] {
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
  if (!allocated.mmapped) {
    surprises.push(`malloc(${shortBytes(MMAPPED)}) was not mmapped: it came from the heap (break ${hex(start.programBreak)} → ${hex(allocated.programBreak)}).`);
  }
  findings.push(
    `malloc(${shortBytes(MMAPPED)}) returned ${hex(address)}, ${withArticle(allocated.chunkSize!)}-byte chunk with the M bit ${allocated.mmapped ? 'set' : 'clear'}; ` +
      (grew !== undefined ? `${grew.size} bytes at ${hex(grew.start)}–${hex(grew.end)} appeared in /proc/self/maps with it` : 'no new mapping appeared around it') +
      ` (mmapped bytes ${start.mmappedBytes} → ${allocated.mmappedBytes}).`,
  );
  findings.push(
    `free() ${gone !== undefined ? `unmapped ${gone.size} bytes at ${hex(gone.start)}–${hex(gone.end)} at once` : 'unmapped nothing around the chunk'}: ` +
      `${freed.chunkMapped ? 'a mapping still held the chunk' : 'no mapping held the chunk any more'}, mmapped bytes went ${allocated.mmappedBytes} → ${freed.mmappedBytes}, ` +
      `and the break ${freed.programBreak === allocated.programBreak ? `stayed at ${hex(freed.programBreak)}` : `moved to ${hex(freed.programBreak)}`}.`,
  );
  return rows;
}

export const freeExperiment: Experiment<FreeRow, 'free'> = {
  name: 'free',
  question: 'Does free give memory back to the kernel?',
  // It needs a heap whose top and bins this run shapes, and it frees an mmapped chunk.
  isolatedByDefault: true,
  run() {
    const findings: string[] = [];
    const surprises: string[] = [];
    const rows: FreeRow[] = [
      ...small(findings, surprises),
      ...trimOnFree(findings),
      ...mallocTrim(findings, surprises),
      ...mmapped(findings, surprises),
    ];
    return { rows, findings, surprises };
  },
};
