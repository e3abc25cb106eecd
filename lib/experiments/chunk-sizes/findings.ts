// What the chunk-sizes experiment says about its rows: each finding and
// surprise a rule over the rows, sorted once into heap and mmapped chunks.
import { bytes, withArticle } from '../../format';
import { MINSIZE } from '../../size-classes';
import { DEFAULT_MMAP_THRESHOLD, mostCommon } from '../measure';
import { Rule, say } from '../rules';
import { ChunkSizeRow, SMALL, stairs } from './measure';

interface Facts {
  /** Every request, in request order: 0 … SMALL, then the probes. */
  rows: ChunkSizeRow[];
  heap: ChunkSizeRow[];
  mapped: ChunkSizeRow[];
  /** Heap chunks of requests up to SMALL that got the size request2size gives. */
  small: ChunkSizeRow[];
}

function facts(rows: ChunkSizeRow[]): Facts {
  const heap = rows.filter((r) => !r.header.isMmapped);
  return {
    rows,
    heap,
    mapped: rows.filter((r) => r.header.isMmapped),
    small: heap.filter((r) => r.request <= SMALL && r.chunkSize === r.ruleSize),
  };
}

function trailingZeros(value: bigint): number {
  let n = 0;
  while (value > 0n && (value & 1n) === 0n && n < 64) {
    value >>= 1n;
    n++;
  }
  return n;
}

/** Why a heap chunk of a request at or above the default mmap threshold came from the heap. */
function heapWhy(r: ChunkSizeRow, mapped: ChunkSizeRow[]): string {
  // The rows run in request order, and every mmapped probe was freed
  // right after it was measured.
  const top = r.topBefore ?? 0;
  const freedBefore = mapped.filter((m) => m.request < r.request).pop();
  // If the break moved: brk was chosen over mmap, so the threshold had been raised.
  if ((r.breakMoved ?? 0) > 0) {
    return `main_arena's top chunk held only ${bytes(top)}, so malloc went to the kernel, and it chose brk ` +
      `(the break moved by ${bytes(r.breakMoved!)}) over mmap: the mmap threshold was above ${bytes(r.request)} at that moment, ` +
      (freedBefore !== undefined
        ? `raised when the ${bytes(freedBefore.chunkSize)} mmapped chunk was freed just before (glibc's dynamic threshold)`
        : 'raised beyond its 128 KiB default by frees made before this run (glibc\'s dynamic threshold)');
  }
  // If the top chunk held it: malloc never had to choose.
  if (top >= r.chunkSize) {
    return `main_arena's top chunk held ${bytes(top)}, enough to serve it without asking the kernel; ` +
      'malloc only chooses between brk and mmap when the top chunk is too small';
  }
  // Else a free chunk served it.
  return `the break did not move and the top chunk held only ${bytes(top)}, so it came from a free chunk already in the bins`;
}

/** How an mmapped chunk's size stands to the page size. */
function pagesOf(r: ChunkSizeRow): string {
  const page = r.pageSize!;
  if (r.chunkSize % page === 0) return 'a whole number of pages';
  // 614cfd0f8a (2.43): the mapping keeps a next chunk's header after the chunk, as a heap chunk has one.
  if ((r.chunkSize + 16) % page === 0) {
    return `16 bytes short of ${(r.chunkSize + 16) / page} pages: from glibc 2.43 the mapping ends with the room of a next chunk's header, as in the heap`;
  }
  return `not a whole number of ${page}-byte pages`;
}

const FINDINGS: Rule<Facts>[] = [
  // What malloc(0) got.
  ({ rows: [zero] }) => `malloc(0) returned ${withArticle(zero.chunkSize)}-byte chunk with ${zero.usableSize} usable bytes.`,

  // What malloc(10) got, and how much more than asked.
  ({ rows }) => {
    const ten = rows[10];
    return `malloc(10) returned ${withArticle(ten.chunkSize)}-byte chunk with ${ten.usableSize} usable bytes: ${ten.slack} more than asked for.`;
  },

  // The smallest heap chunk.
  ({ heap }) => `The smallest chunk handed out was ${Math.min(...heap.map((r) => r.chunkSize))} bytes.`,

  // If the small chunks climb in stairs: the step seen most often, and the first two stairs.
  ({ small }) => {
    const staircase = stairs(small);
    const step = mostCommon(staircase.slice(1).map((s, i) => s.chunkSize - staircase[i].chunkSize));
    if (step === undefined || staircase.length <= 1) return undefined;
    const [first, next] = staircase;
    return `Chunk sizes climb in steps of ${step} bytes: requests ${first.from}–${first.to} got ${first.chunkSize}, ` +
      `${next.from}–${next.to} got ${next.chunkSize}, and so on across ${staircase.length} steps up to ${SMALL} bytes.`;
  },

  // How many heap chunks lose the usual header bytes to the usable size.
  ({ heap }) => {
    const headerCost = mostCommon(heap.map((r) => r.chunkSize - r.usableSize));
    const sameCost = heap.filter((r) => r.chunkSize - r.usableSize === headerCost).length;
    return `For ${sameCost} of ${heap.length} heap chunks the usable size was the chunk size minus ${headerCost} bytes` +
      ' (the size field; the next chunk\'s prev_size field is lent to the user).';
  },

  // The most usable bytes beyond a small request.
  ({ small }) => `Up to ${Math.max(...small.map((r) => r.slack))} bytes beyond the request were usable (rounding to the chunk granularity).`,

  // The alignment every address shared.
  ({ rows }) => `Every returned address was a multiple of ${2 ** Math.min(...rows.map((r) => trailingZeros(r.address)))}.`,

  // How many requests got the size the rule predicts.
  ({ rows }) => `${rows.filter((r) => r.chunkSize === r.ruleSize).length} of ${rows.length} requests got exactly the chunk size the rule predicts.`,

  // Each mmapped request: its chunk and usable size.
  ({ mapped }) => mapped.map((r) =>
    `malloc(${bytes(r.request)}) was mmapped on its own: ${withArticle(bytes(r.chunkSize))} chunk (${pagesOf(r)}), ` +
    `${r.usableSize} usable bytes = chunk − ${r.chunkSize - r.usableSize}.`),
];

const SURPRISES: Rule<Facts>[] = [
  // Each request whose chunk is not the rule's size: a free chunk handed out whole when the extra is below MINSIZE, else unexplained.
  ({ rows }) => rows.filter((row) => row.chunkSize !== row.ruleSize).map((r) => {
    const extra = r.chunkSize - r.ruleSize;
    return !r.header.isMmapped && extra > 0 && extra < MINSIZE
      ? `malloc(${r.request}) got ${withArticle(r.chunkSize)}-byte chunk where the rule gives ${r.ruleSize}: a free ${r.chunkSize}-byte chunk ` +
        `was handed out whole, because splitting it would have left ${extra} bytes, below the ${MINSIZE}-byte minimum chunk.`
      : `malloc(${r.request}) got ${withArticle(r.chunkSize)}-byte chunk where the rule gives ${r.ruleSize}; heapscope has no explanation for the difference.`;
  }),

  // Each request at or above the default mmap threshold that came from the heap, and why.
  ({ heap, mapped }) => heap.filter((row) => row.request >= DEFAULT_MMAP_THRESHOLD).map((r) =>
    `malloc(${bytes(r.request)}), at or above glibc's default 128 KiB mmap threshold, came from the heap: ${heapWhy(r, mapped)}.`),
];

export function describeRows(rows: ChunkSizeRow[]): { findings: string[]; surprises: string[] } {
  const f = facts(rows);
  return { findings: say(FINDINGS, f), surprises: say(SURPRISES, f) };
}
