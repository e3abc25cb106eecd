// What malloc_trim(0) would give back, from the decoded lists and the walk alone (pure).
//
// The rule, from glibc's __malloc_trim and mtrim (malloc/malloc.c, 2.26 to
// 2.42): for every arena, main_arena first and then along `next`,
//  1. malloc_consolidate: every fastbin chunk merges with the free chunks
//     beside it (tcache chunks count as in use and stop a merge); a merged
//     chunk that reaches top becomes part of top.
//  2. For each chunk then in the unsorted bin or in a bin from
//     bin_index(pagesize) up (smaller bins cannot hold a page), the pages
//     from (p + sizeof(struct malloc_chunk) rounded up to a page) to
//     (p + size rounded down to a page) are madvise(MADV_DONTNEED)ed, when
//     that is at least one page. sizeof(struct malloc_chunk) is 48 on 64-bit.
//  3. main_arena only, systrim(pad = 0): top_area = chunksize(top) −
//     MINSIZE − 1; when positive, ALIGN_DOWN(top_area, pagesize (or
//     mp_.thp_pagesize when set)) bytes at top's end go back with sbrk,
//     provided the break is still where top ends (whether or not the arena
//     is contiguous: systrim tests nothing else).
// A thread arena's top is never trimmed here: heap_trim shrinks its heaps
// only when free() runs in that arena.
import type { Arena } from '../allocator/arenas';
import { intersection } from '../address-ranges';
import { hex } from '../format';
import { MINSIZE } from '../size-classes';

/** sizeof (struct malloc_chunk) on 64-bit: prev_size, size, fd, bk, fd_nextsize, bk_nextsize. */
const MALLOC_CHUNK = 48n;
const MIN_CHUNK = BigInt(MINSIZE);

export interface TrimPlan {
  ranges: { arena: bigint; source: 'free-chunk' | 'top'; start: bigint; end: bigint }[];
  topReason?: string;
}

const down = (v: bigint, a: bigint) => v - (v % a);
const up = (v: bigint, a: bigint) => down(v + a - 1n, a);

/**
 * The ranges malloc_trim(0) releases. `runs` holds each arena's runs of
 * adjacent chunks in its bins and fastbins (binnedRuns), `heapEnd` is where
 * [heap] ends (the break), `thpPagesize` mp_.thp_pagesize (0 or undefined
 * when off).
 */
export function planTrim(
  arenas: readonly Arena[], runs: ReadonlyMap<bigint, readonly { start: bigint; size: bigint }[]>, pageSize: number,
  heapEnd: bigint | undefined, thpPagesize: bigint | undefined,
): TrimPlan {
  const ps = BigInt(pageSize);
  const ranges: TrimPlan['ranges'] = [];
  let topReason: string | undefined;
  for (const a of arenas) {
    let topStart = a.top.address;
    for (const run of runs.get(a.address) ?? []) {
      const end = run.start + run.size;
      if (end === a.top.address) {
        topStart = run.start;
        continue;
      }
      const from = up(run.start + MALLOC_CHUNK, ps);
      const to = down(end, ps);
      if (to - from >= ps) ranges.push({ arena: a.address, source: 'free-chunk', start: from, end: to });
    }
    if (a.kind !== 'main') continue;
    if (a.top.size === undefined) {
      topReason = `main_arena's top could not be read: ${a.top.reason}`;
      continue;
    }
    const topEnd = a.top.address + a.top.size;
    const topArea = topEnd - topStart - MIN_CHUNK - 1n;
    const unit = thpPagesize !== undefined && thpPagesize !== 0n ? thpPagesize : ps;
    const extra = topArea > 0n ? down(topArea, unit) : 0n;
    // systrim asks only that the top end at the break (a non-contiguous main_arena's may be back in [heap]).
    if (heapEnd !== topEnd) {
      topReason = `main_arena's top ends at ${hex(topEnd)}, not at the break${heapEnd === undefined ? '' : ` ${hex(heapEnd)}`}: systrim gives nothing back`;
    } else if (extra === 0n) {
      topReason = `main_arena's top (${topEnd - topStart} bytes after merging) holds no whole ${unit === ps ? 'page' : 'huge page'} past MINSIZE`;
    } else ranges.push({ arena: a.address, source: 'top', start: topEnd - extra, end: topEnd });
  }
  return { ranges, ...(topReason === undefined ? {} : { topReason }) };
}

/**
 * What of `ranges` the kernel lets go where they meet huge pages (`huge`:
 * the lines the map names /anon_hugepage, where glibc.malloc.hugetlb put
 * chunks, in address order), and what it would keep. mtrim madvises each range aligned to the
 * ordinary page; Linux takes MADV_DONTNEED on huge pages from 5.18 only
 * (`hugeDontneed`), and then only from a start aligned to the huge page, up
 * to the last whole one (madvise_dontneed_free_valid_vma); a part it
 * refuses ends the call, so the rest of that range stays too. In this
 * process, on Linux 6.18, a trim of 100 such ranges (5.3 MiB resident)
 * gave back none. Pure.
 */
export function trimInHugePages<R extends TrimPlan['ranges'][number]>(
  ranges: readonly R[], huge: readonly { start: bigint; end: bigint }[], hugePage: bigint, hugeDontneed: boolean,
): { ranges: R[]; kept: R[] } {
  const out: R[] = [];
  const kept: R[] = [];
  const part = (r: R, start: bigint, end: bigint, into: R[]) => {
    if (end > start) into.push({ ...r, start, end });
  };
  for (const r of ranges) {
    // In address order, as the map's lines are.
    const meets = huge.filter((h) => h.start < r.end && r.start < h.end);
    if (meets.length === 0 || r.source !== 'free-chunk' || hugePage === 0n) {
      out.push(r);
      continue;
    }
    let at = r.start;
    let refused = false;
    for (const h of meets) {
      const { start: from, end: to } = intersection({ start: at, end: r.end }, h)!;
      part(r, at, from, refused ? kept : out);
      // Refused (EINVAL): before 5.18, or from a start off a huge page. The call stops there.
      const taken = !refused && hugeDontneed && from % hugePage === 0n;
      const goes: bigint = taken ? (down(to, hugePage) > from ? down(to, hugePage) : from) : from;
      part(r, from, goes, out);
      part(r, goes, to, kept);
      if (!taken) refused = true;
      at = to;
    }
    part(r, at, r.end, refused ? kept : out);
  }
  return { ranges: out, kept };
}
