// Is malloc'd memory resident before you touch it? mincore(2) on each block
// and /proc/self/statm around each call and each first write.
import fs from 'node:fs';
import { ChunkHeader } from '../../chunk';
import { HeapscopeError } from '../../errors';
import { bytes, hex, shortBytes } from '../../format';
import { PlanStep, runPlan, StepResult } from '../../plan';
import { pageSize } from '../../stats';
import { mmapThresholdNow } from '../measure';
import { Experiment } from '../types';

/**
 * An mmapped malloc, an mmapped calloc, then four heap blocks below the
 * mmap threshold in a row: the first ones are carved from the top chunk as
 * it is, and once it runs short the break moves and the next one gets
 * memory nobody has written yet.
 */
export type PagingBlock = 'malloc-mmapped' | 'calloc-mmapped' | 'malloc-heap-1' | 'malloc-heap-2' | 'malloc-heap-3' | 'malloc-heap-4';

const BLOCKS: readonly PagingBlock[] = [
  'malloc-mmapped', 'calloc-mmapped', 'malloc-heap-1', 'malloc-heap-2', 'malloc-heap-3', 'malloc-heap-4',
];

/** When the row was measured: right after the call returned, after every byte was written, after free. */
export type PagingMoment = 'allocated' | 'touched' | 'freed';

export interface PagingRow {
  block: PagingBlock;
  call: 'malloc' | 'calloc';
  request: number;
  address: bigint;
  header: ChunkHeader;
  moment: PagingMoment;
  /** mincore over the block's usable bytes; not measured after free. */
  residentPages?: number;
  totalPages?: number;
  /** The process's resident set (statm), in pages. */
  rssPages: number;
  /** RSS change over the call, over the writes, or over free: from the statm step just before to the one just after. */
  rssDeltaPages: number;
  /** `allocated` rows: main_arena's top chunk (keepcost) and the program break around the call. */
  topBefore?: number;
  topAfter?: number;
  breakBefore?: bigint;
  breakAfter?: bigint;
}

const MMAPPED = 8 << 20;
const HEAP = 64 << 10;

interface Indices {
  block: PagingBlock;
  call: 'malloc' | 'calloc';
  request: number;
  rssBefore: number;
  alloc: number;
  header: number;
  resident: number;
  rss: number;
  residentTouched: number;
  rssTouched: number;
  topBefore: number;
  topAfter: number;
  breakBefore: number;
  breakAfter: number;
  rssBeforeFree?: number;
  rssFreed?: number;
}

function plan(): { steps: PlanStep[]; blocks: Indices[] } {
  const steps: PlanStep[] = [];
  const push = (step: PlanStep): number => steps.push(step) - 1;
  const block = (name: PagingBlock, call: 'malloc' | 'calloc', request: number): Indices => {
    const topBefore = push({ op: 'mallinfo' });
    const breakBefore = push({ op: 'break' });
    const rssBefore = push({ op: 'statm' });
    const alloc = push(call === 'malloc' ? { op: 'malloc', size: request } : { op: 'calloc', count: 1, size: request });
    const topAfter = push({ op: 'mallinfo' });
    const breakAfter = push({ op: 'break' });
    const header = push({ op: 'header', step: alloc });
    const resident = push({ op: 'resident', step: alloc });
    const rss = push({ op: 'statm' });
    push({ op: 'touch', step: alloc });
    const residentTouched = push({ op: 'resident', step: alloc });
    const rssTouched = push({ op: 'statm' });
    return {
      block: name, call, request, rssBefore, alloc, topBefore, topAfter, breakBefore, breakAfter,
      header, resident, rss, residentTouched, rssTouched,
    };
  };
  const blocks = [
    block('malloc-mmapped', 'malloc', MMAPPED),
    block('calloc-mmapped', 'calloc', MMAPPED),
    block('malloc-heap-1', 'malloc', HEAP),
    block('malloc-heap-2', 'malloc', HEAP),
    block('malloc-heap-3', 'malloc', HEAP),
    block('malloc-heap-4', 'malloc', HEAP),
  ];
  // Freed last: freeing an mmapped chunk raises the dynamic mmap threshold
  // to its size, which would send the calloc after it to the heap.
  for (const b of blocks.slice(0, 2)) {
    b.rssBeforeFree = push({ op: 'statm' });
    push({ op: 'free', step: b.alloc });
    b.rssFreed = push({ op: 'statm' });
  }
  return { steps, blocks };
}

function measure(): PagingRow[] {
  const { steps, blocks } = plan();
  const { steps: results } = runPlan(steps);
  const rows: PagingRow[] = [];
  const ok = (i: number): StepResult => {
    const r = results[i];
    if (r.status !== 'ok') {
      throw new HeapscopeError('ERR_EXPERIMENT_FAILED', `step ${i} (${r.op}) ${r.status}${r.errno === undefined ? '' : `, errno ${r.errno}`}`);
    }
    return r;
  };
  for (const b of blocks) {
    const base = {
      block: b.block, call: b.call, request: b.request, address: ok(b.alloc).address!, header: ok(b.header).header!,
    };
    const rss = (i: number) => ok(i).rssPages!;
    rows.push({
      ...base,
      moment: 'allocated',
      residentPages: ok(b.resident).residentPages!,
      totalPages: ok(b.resident).totalPages!,
      rssPages: rss(b.rss),
      rssDeltaPages: rss(b.rss) - rss(b.rssBefore),
      topBefore: ok(b.topBefore).mallinfo!.keepcost,
      topAfter: ok(b.topAfter).mallinfo!.keepcost,
      breakBefore: ok(b.breakBefore).programBreak!,
      breakAfter: ok(b.breakAfter).programBreak!,
    });
    rows.push({
      ...base,
      moment: 'touched',
      residentPages: ok(b.residentTouched).residentPages!,
      totalPages: ok(b.residentTouched).totalPages!,
      rssPages: rss(b.rssTouched),
      rssDeltaPages: rss(b.rssTouched) - rss(b.rss),
    });
    if (b.rssFreed !== undefined) {
      rows.push({ ...base, moment: 'freed', rssPages: rss(b.rssFreed), rssDeltaPages: rss(b.rssFreed) - rss(b.rssBeforeFree!) });
    }
  }
  return rows;
}

export interface HugePages {
  /** The kernel's transparent huge page mode ('always', 'madvise', 'never'); undefined where it cannot be read. */
  mode?: string;
  /**
   * The largest folio, in bytes, a first write may fault in on anonymous
   * memory that never called madvise: a size whose mode is 'always', or
   * 'inherit' while the top-level mode is 'always'. 0 when none is.
   */
  alwaysSize: number;
}

const THP = '/sys/kernel/mm/transparent_hugepage';

/** Reads the transparent huge page settings (top-level, and per size on kernels with multi-size THP). */
export function transparentHugePages(): HugePages {
  const selected = (file: string): string | undefined => {
    try {
      return /\[(\w+)\]/.exec(fs.readFileSync(file, 'utf8'))?.[1];
    } catch {
      return undefined;
    }
  };
  const mode = selected(`${THP}/enabled`);
  let sizes: string[] = [];
  try {
    sizes = fs.readdirSync(THP).filter((name) => /^hugepages-\d+kB$/.test(name));
  } catch {
    // no sysfs: nothing known
  }
  let alwaysSize = 0;
  if (sizes.length === 0 && mode === 'always') {
    try {
      alwaysSize = Number(fs.readFileSync(`${THP}/hpage_pmd_size`, 'utf8'));
    } catch {
      alwaysSize = 2 << 20;
    }
  }
  for (const name of sizes) {
    const size = Number(/\d+/.exec(name)![0]) * 1024;
    const own = selected(`${THP}/${name}/enabled`);
    if (own === 'always' || (own === 'inherit' && mode === 'always')) alwaysSize = Math.max(alwaysSize, size);
  }
  return { ...(mode === undefined ? {} : { mode }), alwaysSize };
}

function label(row: PagingRow): string {
  const nth = /-(\d)$/.exec(row.block)?.[1];
  const call = row.call === 'calloc' ? `calloc(1, ${shortBytes(row.request)})` : `malloc(${shortBytes(row.request)})`;
  return nth === undefined ? call : `${call} #${nth}`;
}

export const paging: Experiment<PagingRow, 'paging'> = {
  name: 'paging',
  question: "Is malloc'd memory resident before you touch it?",
  // Frees two 8 MiB mmapped chunks, which raises the dynamic mmap threshold.
  isolatedByDefault: true,
  run() {
    const rows = measure();
    const page = pageSize();
    const findings: string[] = [];
    const surprises: string[] = [];
    const pages = (n: number) => `${shortBytes(n * page)} (${n} page${Math.abs(n) === 1 ? '' : 's'})`;
    const thp = transparentHugePages();

    for (const block of BLOCKS) {
      const mine = rows.filter((r) => r.block === block);
      const allocated = mine.find((r) => r.moment === 'allocated')!;
      const touched = mine.find((r) => r.moment === 'touched')!;
      const freed = mine.find((r) => r.moment === 'freed');
      const name = label(allocated);
      const h = allocated.header;
      const before = allocated.residentPages!;
      const total = allocated.totalPages!;
      const origin = h.isMmapped
        ? `was mmapped on its own (M bit set, chunk of ${bytes(h.size)} at ${hex(h.address)})`
        : `came from the heap (M bit clear, chunk of ${bytes(h.size)} at ${hex(h.address)})`;
      findings.push(
        `${name} ${origin}: ${before} of ${total} pages resident before writing, ${touched.residentPages} after; ` +
          `RSS rose by ${pages(allocated.rssDeltaPages)} at the call and by ${pages(touched.rssDeltaPages)} when every byte was written.`,
      );
      if (freed !== undefined) {
        const d = freed.rssDeltaPages;
        findings.push(`free() of the ${name} block: RSS ${d < 0 ? 'fell' : 'rose'} by ${pages(Math.abs(d))} at once.`);
      }

      const { topBefore = 0, topAfter = 0, breakBefore = 0n, breakAfter = 0n } = allocated;
      const moved = breakAfter - breakBefore;
      // Where a heap chunk came from, read off the top chunk and the break around the call.
      const source = moved !== 0n
        ? `the program break moved by ${bytes(Number(moved))} (${hex(breakBefore)} → ${hex(breakAfter)}) to grow the top chunk it was carved from`
        : topBefore - topAfter === h.size
          ? `main_arena's top chunk shrank by exactly the chunk's ${bytes(h.size)} (${bytes(topBefore)} → ${bytes(topAfter)}) ` +
            `and the break stayed at ${hex(breakAfter)}: it was carved from the top`
          : `main_arena's top chunk went from ${bytes(topBefore)} to ${bytes(topAfter)}, not down by the chunk's ${bytes(h.size)}, ` +
            `and the break stayed at ${hex(breakAfter)}: it came from a free chunk`;

      const expectMmap = block === 'malloc-mmapped' || block === 'calloc-mmapped';
      if (!h.isMmapped) findings.push(`For ${name}, ${source}.`);
      if (expectMmap && !h.isMmapped) {
        surprises.push(
          `${name}, far above glibc's default 128 KiB mmap threshold, was not mmapped in this run (M bit clear): ${source}. ` +
            (topBefore >= h.size
              ? `The top chunk already held ${bytes(topBefore)}, and malloc only weighs mmap against brk when the top is too small.`
              : `The top chunk was too small for it, and ${mmapThresholdNow()}.`),
        );
      }
      if (expectMmap && h.isMmapped && before > 0 && before < total) {
        findings.push(
          `The ${before} resident page${before === 1 ? '' : 's'} of the untouched ${name} block: ${allocated.call} wrote the chunk header ` +
            `(size word ${hex(h.rawSize)}) at ${hex(h.address)}, in the block's first page.`,
        );
      }
      if (expectMmap && before > 1) {
        surprises.push(
          `${before} of the untouched ${name} block's ${total} pages were resident, not just the header's` +
            (thp.alwaysSize > page
              ? `: transparent huge pages of up to ${shortBytes(thp.alwaysSize)} are enabled without madvise here, so one write can fault in that much.`
              : '; transparent huge pages are not enabled without madvise here.'),
        );
      }
      if (block === 'calloc-mmapped') {
        if (h.isMmapped && before < total) {
          surprises.push(
            `calloc is not malloc + memset here: after calloc(1, ${shortBytes(allocated.request)}) returned zeroed memory, only ${before} of its ` +
              `${total} pages ${before === 1 ? 'was' : 'were'} resident and RSS had risen by ${pages(allocated.rssDeltaPages)}: glibc wrote no zeros into the mmapped ` +
              'chunk (M bit set), leaving them to the kernel\'s untouched pages; the pages only became resident when written.',
          );
        } else if (before === total) {
          findings.push(`${name} had all ${total} pages resident as soon as it returned: calloc wrote its zeros.`);
        }
      }
      if (!expectMmap && !h.isMmapped && before === total) {
        surprises.push(`All ${total} pages of the untouched ${name} block were resident before it was written: that memory had been written before (${source}).`);
      }
    }
    const heap = rows.filter((r) => r.moment === 'allocated' && !r.header.isMmapped && r.request === HEAP);
    const fresh = heap.filter((r) => r.breakAfter !== r.breakBefore);
    const reused = heap.filter((r) => r.breakAfter === r.breakBefore);
    if (fresh.length > 0 && reused.length > 0) {
      const list = (of: PagingRow[]) => of.map((r) => `${r.residentPages} of ${r.totalPages}`).join(', ');
      findings.push(
        `Heap blocks of ${shortBytes(HEAP)}: carved from the top chunk without moving the break, ${list(reused)} pages were resident ` +
          `before writing; after the break moved, ${list(fresh)}.`,
      );
    } else if (fresh.length === 0) {
      findings.push(`The break never moved for the ${heap.length} heap blocks of ${shortBytes(HEAP)}: the top chunk or free chunks had room for all of them.`);
    }
    if (thp.mode !== undefined) {
      findings.push(
        `Transparent huge pages on this machine: '${thp.mode}' (${THP}/enabled); ` +
          (thp.alwaysSize > 0 ? `a first write may fault in up to ${shortBytes(thp.alwaysSize)} at once.` : 'no size is enabled without madvise.'),
      );
    }
    return { rows, findings, surprises };
  },
};
