// What the paging experiment says about its rows: per block, how much of it
// was resident before and after it was written, where it came from and what
// free gave back; then the heap blocks together and the machine's huge page
// setting. Each finding and surprise a rule over the figures measured.
import { ChunkHeader } from '../../chunk';
import { bytes, hex, shortBytes } from '../../format';
import { mmapThresholdNow } from '../measure';
import { Rule, say } from '../rules';
import { BLOCKS, HEAP, HugePages, Measured, PagingBlock, PagingRow, THP } from './measure';

/** One block's rows, sorted by what the rules ask about. */
interface Block {
  block: PagingBlock;
  /** How its sentences name it: `malloc(64 KiB) #2`. */
  name: string;
  allocated: PagingRow;
  touched: PagingRow;
  freed?: PagingRow;
  header: ChunkHeader;
  /** Pages resident right after the call, of the block's pages. */
  before: number;
  total: number;
  /** Asked for far above the default mmap threshold, so expected to be mmapped. */
  expectMmap: boolean;
  /** Where a heap chunk came from, read off the top chunk and the break around the call. */
  source: string;
  page: number;
  thp: HugePages;
}

function label(row: PagingRow): string {
  const nth = /-(\d)$/.exec(row.block)?.[1];
  const call = row.call === 'calloc' ? `calloc(1, ${shortBytes(row.request)})` : `malloc(${shortBytes(row.request)})`;
  return nth === undefined ? call : `${call} #${nth}`;
}

/** Where a heap chunk came from: a break move, the top chunk, or a free chunk. */
function sourceOf({ topBefore = 0, topAfter = 0, breakBefore = 0n, breakAfter = 0n, header: h }: PagingRow): string {
  const moved = breakAfter - breakBefore;
  // If the break moved: the top chunk it was carved from grew.
  if (moved !== 0n) return `the program break moved by ${bytes(Number(moved))} (${hex(breakBefore)} → ${hex(breakAfter)}) to grow the top chunk it was carved from`;
  // If the top shrank by exactly the chunk: carved from the top.
  if (topBefore - topAfter === h.size) {
    return `main_arena's top chunk shrank by exactly the chunk's ${bytes(h.size)} (${bytes(topBefore)} → ${bytes(topAfter)}) ` +
      `and the break stayed at ${hex(breakAfter)}: it was carved from the top`;
  }
  // Else: a free chunk.
  return `main_arena's top chunk went from ${bytes(topBefore)} to ${bytes(topAfter)}, not down by the chunk's ${bytes(h.size)}, ` +
    `and the break stayed at ${hex(breakAfter)}: it came from a free chunk`;
}

function blockFacts(rows: PagingRow[], block: PagingBlock, page: number, thp: HugePages): Block {
  const mine = rows.filter((r) => r.block === block);
  const allocated = mine.find((r) => r.moment === 'allocated')!;
  return {
    block,
    name: label(allocated),
    allocated,
    touched: mine.find((r) => r.moment === 'touched')!,
    freed: mine.find((r) => r.moment === 'freed'),
    header: allocated.header,
    before: allocated.residentPages!,
    total: allocated.totalPages!,
    expectMmap: block === 'malloc-mmapped' || block === 'calloc-mmapped',
    source: sourceOf(allocated),
    page,
    thp,
  };
}

/** `8 KiB (2 pages)`. */
const pages = (n: number, page: number): string => `${shortBytes(n * page)} (${n} page${Math.abs(n) === 1 ? '' : 's'})`;

const BLOCK_FINDINGS: Rule<Block>[] = [
  // Where it came from, and how many pages were resident before and after writing it; RSS at the call and at the writes.
  ({ name, header: h, before, total, touched, allocated, page }) => {
    const origin = h.isMmapped
      ? `was mmapped on its own (M bit set, chunk of ${bytes(h.size)} at ${hex(h.address)})`
      : `came from the heap (M bit clear, chunk of ${bytes(h.size)} at ${hex(h.address)})`;
    return `${name} ${origin}: ${before} of ${total} pages resident before writing, ${touched.residentPages} after; ` +
      `RSS rose by ${pages(allocated.rssDeltaPages, page)} at the call and by ${pages(touched.rssDeltaPages, page)} when every byte was written.`;
  },

  // If it was freed: how RSS moved at once.
  ({ freed, name, page }) => {
    if (freed === undefined) return undefined;
    const d = freed.rssDeltaPages;
    return `free() of the ${name} block: RSS ${d < 0 ? 'fell' : 'rose'} by ${pages(Math.abs(d), page)} at once.`;
  },

  // If it came from the heap: from where.
  ({ header: h, name, source }) => (h.isMmapped ? undefined : `For ${name}, ${source}.`),

  // If an mmapped block had some but not all pages resident untouched: the header's page, written by malloc.
  ({ expectMmap, header: h, before, total, name, allocated }) => expectMmap && h.isMmapped && before > 0 && before < total
    ? `The ${before} resident page${before === 1 ? '' : 's'} of the untouched ${name} block: ${allocated.call} wrote the chunk header ` +
      `(size word ${hex(h.rawSize)}) at ${hex(h.address)}, in the block's first page.`
    : undefined,

  // If the calloc had every page resident at once (and is not the mmapped case with pages left untouched): calloc wrote its zeros.
  ({ block, header: h, before, total, name }) => block === 'calloc-mmapped' && !(h.isMmapped && before < total) && before === total
    ? `${name} had all ${total} pages resident as soon as it returned: calloc wrote its zeros.`
    : undefined,
];

const BLOCK_SURPRISES: Rule<Block>[] = [
  // If a block asked for far above the default mmap threshold came from the heap: from where, and why (mp_'s threshold read now when the top was too small).
  ({ expectMmap, header: h, name, source, allocated: { topBefore = 0 } }) => expectMmap && !h.isMmapped
    ? `${name}, far above glibc's default 128 KiB mmap threshold, was not mmapped in this run (M bit clear): ${source}. ` +
      (topBefore >= h.size
        ? `The top chunk already held ${bytes(topBefore)}, and malloc only weighs mmap against brk when the top is too small.`
        : `The top chunk was too small for it, and ${mmapThresholdNow()}.`)
    : undefined,

  // If more than one page of an untouched mmapped-size block was resident: whether huge pages explain it.
  ({ expectMmap, before, total, name, thp, page }) => expectMmap && before > 1
    ? `${before} of the untouched ${name} block's ${total} pages were resident, not just the header's` +
      (thp.alwaysSize > page
        ? `: transparent huge pages of up to ${shortBytes(thp.alwaysSize)} are enabled without madvise here, so one write can fault in that much.`
        : '; transparent huge pages are not enabled without madvise here.')
    : undefined,

  // If the mmapped calloc left pages untouched: it wrote no zeros.
  ({ block, header: h, before, total, allocated, page }) => block === 'calloc-mmapped' && h.isMmapped && before < total
    ? `calloc is not malloc + memset here: after calloc(1, ${shortBytes(allocated.request)}) returned zeroed memory, only ${before} of its ` +
      `${total} pages ${before === 1 ? 'was' : 'were'} resident and RSS had risen by ${pages(allocated.rssDeltaPages, page)}: glibc wrote no zeros into the mmapped ` +
      'chunk (M bit set), leaving them to the kernel\'s untouched pages; the pages only became resident when written.'
    : undefined,

  // If a heap block had every page resident untouched: its memory had been written before.
  ({ expectMmap, header: h, before, total, name, source }) => !expectMmap && !h.isMmapped && before === total
    ? `All ${total} pages of the untouched ${name} block were resident before it was written: that memory had been written before (${source}).`
    : undefined,
];

const RUN_FINDINGS: Rule<Measured>[] = [
  // If some heap blocks moved the break and some did not: pages resident in each; if none moved it, that the heap had room.
  ({ rows }) => {
    const heap = rows.filter((r) => r.moment === 'allocated' && !r.header.isMmapped && r.request === HEAP);
    const fresh = heap.filter((r) => r.breakAfter !== r.breakBefore);
    const reused = heap.filter((r) => r.breakAfter === r.breakBefore);
    if (fresh.length > 0 && reused.length > 0) {
      const list = (of: PagingRow[]) => of.map((r) => `${r.residentPages} of ${r.totalPages}`).join(', ');
      return `Heap blocks of ${shortBytes(HEAP)}: carved from the top chunk without moving the break, ${list(reused)} pages were resident ` +
        `before writing; after the break moved, ${list(fresh)}.`;
    }
    return fresh.length === 0
      ? `The break never moved for the ${heap.length} heap blocks of ${shortBytes(HEAP)}: the top chunk or free chunks had room for all of them.`
      : undefined;
  },

  // If the huge page setting could be read: what it is, and how much a first write may fault in.
  ({ thp }) => thp.mode === undefined ? undefined
    : `Transparent huge pages on this machine: '${thp.mode}' (${THP}/enabled); ` +
      (thp.alwaysSize > 0 ? `a first write may fault in up to ${shortBytes(thp.alwaysSize)} at once.` : 'no size is enabled without madvise.'),
];

export function describeRows(measured: Measured): { findings: string[]; surprises: string[] } {
  const { rows, page, thp } = measured;
  const blocks = BLOCKS.map((block) => blockFacts(rows, block, page, thp));
  return {
    findings: [...blocks.flatMap((b) => say(BLOCK_FINDINGS, b)), ...say(RUN_FINDINGS, measured)],
    surprises: blocks.flatMap((b) => say(BLOCK_SURPRISES, b)),
  };
}
