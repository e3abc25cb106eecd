// malloc(n): how many bytes do you really get?
import { ChunkHeader } from '../../chunk';
import { bytes, withArticle } from '../../format';
import { PlanStep, runPlan } from '../../plan';
import { MINSIZE, mmappedChunkSize, requestToChunkSize } from '../../size-classes';
import { pageSize } from '../../stats';
import { DEFAULT_MMAP_THRESHOLD, mostCommon } from '../measure';
import { Experiment } from '../types';

export interface ChunkSizeRow {
  request: number;
  address: bigint;
  chunkSize: number;
  usableSize: number;
  /** Usable bytes beyond the request. */
  slack: number;
  /** What request2size (or, when mmapped, the page rounding) predicts. */
  ruleSize: number;
  header: ChunkHeader;
  /** main_arena's top chunk just before this request (mallinfo2().keepcost); probes only. */
  topBefore?: number;
  /** How far the program break moved during this request; probes only. */
  breakMoved?: number;
}

/** Requests 0 … 1 KiB byte by byte, then larger probes around the mmap threshold. */
export const SMALL = 1024;
const PROBES = [1500, 4096, 65536, 126 * 1024, 128 * 1024, 256 * 1024, 1 << 20, 4 << 20];

function plan(): PlanStep[] {
  const steps: PlanStep[] = [];
  const requests = [...Array.from({ length: SMALL + 1 }, (_, n) => n), ...PROBES];
  for (const size of requests) {
    if (size > SMALL) steps.push({ op: 'mallinfo' }, { op: 'break' });
    const m = steps.length;
    steps.push({ op: 'malloc', size }, { op: 'header', step: m }, { op: 'usableSize', step: m });
    if (size > SMALL) steps.push({ op: 'break' });
    steps.push({ op: 'free', step: m });
  }
  return steps;
}

function measure(): ChunkSizeRow[] {
  const steps = plan();
  const { steps: results } = runPlan(steps);
  const rows: ChunkSizeRow[] = [];
  const page = pageSize();
  results.forEach((r, i) => {
    const step = steps[i];
    if (step.op !== 'malloc') return;
    const header = results[i + 1].header!;
    const request = Number(step.size);
    const chunkSize = header.size;
    const usableSize = results[i + 2].usableSize!;
    rows.push({
      request,
      address: r.address!,
      chunkSize,
      usableSize,
      slack: usableSize - request,
      ruleSize: header.isMmapped ? mmappedChunkSize(request, page) : requestToChunkSize(request),
      header,
    });
    if (request > SMALL) {
      rows[rows.length - 1].topBefore = results[i - 2].mallinfo!.keepcost;
      rows[rows.length - 1].breakMoved = Number(results[i + 3].programBreak! - results[i - 1].programBreak!);
    }
  });
  return rows;
}

/** Runs of consecutive requests that got the same chunk size: the staircase. */
export function stairs(rows: ChunkSizeRow[]): { from: number; to: number; chunkSize: number }[] {
  const out: { from: number; to: number; chunkSize: number }[] = [];
  for (const row of rows) {
    const last = out[out.length - 1];
    if (last !== undefined && last.chunkSize === row.chunkSize && last.to === row.request - 1) last.to = row.request;
    else out.push({ from: row.request, to: row.request, chunkSize: row.chunkSize });
  }
  return out;
}

function trailingZeros(value: bigint): number {
  let n = 0;
  while (value > 0n && (value & 1n) === 0n && n < 64) {
    value >>= 1n;
    n++;
  }
  return n;
}

export const chunkSizes: Experiment<ChunkSizeRow, 'chunk-sizes'> = {
  name: 'chunk-sizes',
  question: 'malloc(n): how many bytes do you really get?',
  // The large probes are mmapped and freed, which raises the dynamic mmap threshold.
  isolatedByDefault: true,
  run() {
    const rows = measure();
    const findings: string[] = [];
    const surprises: string[] = [];
    const heap = rows.filter((r) => !r.header.isMmapped);
    const mapped = rows.filter((r) => r.header.isMmapped);
    const small = heap.filter((r) => r.request <= SMALL && r.chunkSize === r.ruleSize);

    const zero = rows[0];
    findings.push(`malloc(0) returned ${withArticle(zero.chunkSize)}-byte chunk with ${zero.usableSize} usable bytes.`);
    const ten = rows[10];
    findings.push(`malloc(10) returned ${withArticle(ten.chunkSize)}-byte chunk with ${ten.usableSize} usable bytes: ${ten.slack} more than asked for.`);

    const minChunk = Math.min(...heap.map((r) => r.chunkSize));
    findings.push(`The smallest chunk handed out was ${minChunk} bytes.`);

    const staircase = stairs(small);
    const step = mostCommon(staircase.slice(1).map((s, i) => s.chunkSize - staircase[i].chunkSize));
    if (step !== undefined && staircase.length > 1) {
      const first = staircase[0];
      const next = staircase[1];
      findings.push(
        `Chunk sizes climb in steps of ${step} bytes: requests ${first.from}–${first.to} got ${first.chunkSize}, ` +
          `${next.from}–${next.to} got ${next.chunkSize}, and so on across ${staircase.length} steps up to ${SMALL} bytes.`,
      );
    }

    const headerCost = mostCommon(heap.map((r) => r.chunkSize - r.usableSize));
    const sameCost = heap.filter((r) => r.chunkSize - r.usableSize === headerCost).length;
    findings.push(
      `For ${sameCost} of ${heap.length} heap chunks the usable size was the chunk size minus ${headerCost} bytes` +
        ' (the size field; the next chunk\'s prev_size field is lent to the user).',
    );
    const maxSlack = Math.max(...small.map((r) => r.slack));
    findings.push(`Up to ${maxSlack} bytes beyond the request were usable (rounding to the chunk granularity).`);

    const align = Math.min(...rows.map((r) => trailingZeros(r.address)));
    findings.push(`Every returned address was a multiple of ${2 ** align}.`);

    const agree = rows.filter((r) => r.chunkSize === r.ruleSize).length;
    findings.push(`${agree} of ${rows.length} requests got exactly the chunk size the rule predicts.`);

    for (const r of rows.filter((row) => row.chunkSize !== row.ruleSize)) {
      const extra = r.chunkSize - r.ruleSize;
      if (!r.header.isMmapped && extra > 0 && extra < MINSIZE) {
        surprises.push(
          `malloc(${r.request}) got ${withArticle(r.chunkSize)}-byte chunk where the rule gives ${r.ruleSize}: a free ${r.chunkSize}-byte chunk ` +
            `was handed out whole, because splitting it would have left ${extra} bytes, below the ${MINSIZE}-byte minimum chunk.`,
        );
      } else {
        surprises.push(`malloc(${r.request}) got ${withArticle(r.chunkSize)}-byte chunk where the rule gives ${r.ruleSize}; heapscope has no explanation for the difference.`);
      }
    }

    for (const r of mapped) {
      findings.push(
        `malloc(${bytes(r.request)}) was mmapped on its own: ${withArticle(bytes(r.chunkSize))} chunk (a whole number of pages), ` +
          `${r.usableSize} usable bytes = chunk − ${r.chunkSize - r.usableSize}.`,
      );
    }
    for (const r of heap.filter((row) => row.request >= DEFAULT_MMAP_THRESHOLD)) {
      // The rows run in request order, and every mmapped probe was freed
      // right after it was measured.
      const top = r.topBefore ?? 0;
      const freedBefore = mapped.filter((m) => m.request < r.request).pop();
      let why: string;
      if ((r.breakMoved ?? 0) > 0) {
        why = `main_arena's top chunk held only ${bytes(top)}, so malloc went to the kernel, and it chose brk ` +
          `(the break moved by ${bytes(r.breakMoved!)}) over mmap: the mmap threshold was above ${bytes(r.request)} at that moment, ` +
          (freedBefore !== undefined
            ? `raised when the ${bytes(freedBefore.chunkSize)} mmapped chunk was freed just before (glibc's dynamic threshold)`
            : 'raised beyond its 128 KiB default by frees made before this run (glibc\'s dynamic threshold)');
      } else if (top >= r.chunkSize) {
        why = `main_arena's top chunk held ${bytes(top)}, enough to serve it without asking the kernel; ` +
          'malloc only chooses between brk and mmap when the top chunk is too small';
      } else {
        why = `the break did not move and the top chunk held only ${bytes(top)}, so it came from a free chunk already in the bins`;
      }
      surprises.push(`malloc(${bytes(r.request)}), at or above glibc's default 128 KiB mmap threshold, came from the heap: ${why}.`);
    }
    return { rows, findings, surprises };
  },
};
