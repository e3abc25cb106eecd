// The process's resident memory by what holds it, from smaps (pure): the
// main heap, each thread arena's heaps, mmapped chunks (resident bytes from
// pagemap, taken out of the anonymous regions holding them), code, stacks,
// the rest of anonymous memory, libraries' data and files. The rows add up
// to the smaps total.
import { intersection } from '../address-ranges';
import type { Arena } from '../allocator/arenas';
import type { MemoryRegion } from '../maps';
import type { MmappedChunks, RssKind, RssRow } from './types';

/**
 * A thread stack as glibc's allocate_stack lays it out: read-write
 * anonymous memory right above a guard of one page with no access.
 */
export function isThreadStack(regions: readonly MemoryRegion[], i: number, pageSize: number): boolean {
  const r = regions[i];
  const below = regions[i - 1];
  return r.kind === 'anonymous' && r.perms === 'rw-p' && below !== undefined && below.end === r.start &&
    below.perms === '---p' && below.size === pageSize && below.inode === 0;
}

function kindOf(r: MemoryRegion): RssKind {
  switch (r.kind) {
    case 'heap': return 'main-heap';
    case 'text': return 'code';
    case 'stack': return 'stacks';
    case 'anonymous': return 'other-anonymous';
    case 'data': case 'bss': case 'rodata': return 'library-data';
    case 'file': return 'files';
    default: return 'other';
  }
}

/** Every kind, in the order the rows come. */
export const RSS_KINDS: readonly RssKind[] = ['main-heap', 'arena-heaps', 'mmapped-chunks', 'code', 'stacks', 'other-anonymous', 'library-data', 'files', 'other'];

/**
 * Rows in ORDER (thread arenas in list order), empty kinds left out;
 * `regions` come from smaps. A thread arena's heaps are the heap_max_size
 * (`heapMax`) glibc reserved for each, by the decoded heaps, not by the
 * map's look alone: with huge pages a heap is neither 64 MiB nor always
 * anonymous as the map names it. A line the kernel merged across a heap's
 * bounds (its read-write part with a mapping of the same kind right below
 * it; its reserved tail with a guard page right above it) is split there,
 * the heap's part resident as pagemap counts it (`residentOf`: read before
 * the snapshot for [heap] and the lines the map calls arena heaps, when
 * asked for any other), the rest of the line's resident bytes the other
 * part's.
 */
export function rssRows(
  regions: readonly MemoryRegion[], arenas: readonly Arena[], mmapped: MmappedChunks, pageSize: number, heapMax: bigint,
  residentOf: (start: bigint, end: bigint) => number,
): { total: number; rows: RssRow[] } {
  const heaps = arenas.flatMap((a) => a.heaps.map((h) => ({ start: h.address, end: h.address + heapMax, arena: a.address })));
  const rows = new Map<string, RssRow>();
  const row = (kind: RssKind, arena?: bigint): RssRow => {
    const key = arena === undefined ? kind : `${kind} ${arena}`;
    const found = rows.get(key) ?? { kind, ...(arena === undefined ? {} : { arena }), count: 0, size: 0, rss: 0 };
    rows.set(key, found);
    return found;
  };
  // The row each region is counted in, by the region's index (its part outside every heap, where it has one).
  const rowOf: RssRow[] = [];
  let total = 0;
  regions.forEach((r, i) => {
    const rss = r.rss ?? 0;
    total += rss;
    let size = r.size;
    let left = rss;
    let last: RssRow | undefined;
    for (const h of heaps) {
      const part = intersection(r, h);
      if (part === undefined) continue;
      // A line inside one heap is all its own, as smaps counts it.
      const whole = part.start === r.start && part.end === r.end;
      const resident = whole ? left : Math.min(left, residentOf(part.start, part.end));
      last = row('arena-heaps', h.arena);
      last.count++;
      last.size += Number(part.end - part.start);
      last.rss += resident;
      size -= Number(part.end - part.start);
      left -= resident;
    }
    // A line the heaps cover whole has no rest: what pagemap did not count stays with the last heap.
    const into = size === 0 && last !== undefined ? last : row(isThreadStack(regions, i, pageSize) ? 'stacks' : kindOf(r));
    if (into !== last) into.count++;
    into.size += size;
    into.rss += left;
    rowOf.push(into);
  });
  if (mmapped.found > 0) {
    rows.set('mmapped-chunks', { kind: 'mmapped-chunks', count: mmapped.found, size: mmapped.bytes, rss: mmapped.resident });
    // Out of the row of the line holding each (other anonymous memory, or a library's bss it merged into); chunks and regions both by address.
    let i = 0;
    for (const c of mmapped.chunks) {
      while (i < regions.length && regions[i].end <= c.address) i++;
      const row = regions[i] !== undefined && regions[i].start <= c.address ? rowOf[i] : undefined;
      if (row === undefined) continue;
      row.size -= c.size;
      row.rss -= c.resident;
    }
  }
  const arenaOrder = new Map(arenas.map((a, i) => [a.address, i]));
  const sorted = [...rows.values()].filter((r) => r.count > 0 && (r.size > 0 || r.rss > 0)).sort((a, b) =>
    RSS_KINDS.indexOf(a.kind) - RSS_KINDS.indexOf(b.kind) || (arenaOrder.get(a.arena ?? 0n) ?? 0) - (arenaOrder.get(b.arena ?? 0n) ?? 0));
  return { total, rows: sorted };
}
