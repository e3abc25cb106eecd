// The process's resident memory by what holds it, from smaps (pure): the
// main heap, each thread arena's heaps, mmapped chunks (resident bytes from
// pagemap, taken out of the anonymous regions holding them), code, stacks,
// the rest of anonymous memory, libraries' data and files. The rows add up
// to the smaps total.
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

/** Rows in ORDER (thread arenas in list order), empty kinds left out; `regions` come from smaps. */
export function rssRows(regions: readonly MemoryRegion[], arenas: readonly Arena[], mmapped: MmappedChunks, pageSize: number): { total: number; rows: RssRow[] } {
  const heapOwner = new Map(arenas.flatMap((a) => a.heaps.map((h) => [h.address, a.address] as const)));
  const rows = new Map<string, RssRow>();
  // The row each region is counted in, by the region's index.
  const rowOf: RssRow[] = [];
  const add = (kind: RssKind, r: MemoryRegion, arena?: bigint) => {
    const key = arena === undefined ? kind : `${kind} ${arena}`;
    const row = rows.get(key) ?? { kind, ...(arena === undefined ? {} : { arena }), count: 0, size: 0, rss: 0 };
    row.count++;
    row.size += r.size;
    row.rss += r.rss ?? 0;
    rows.set(key, row);
    rowOf.push(row);
  };
  let total = 0;
  regions.forEach((r, i) => {
    total += r.rss ?? 0;
    if (r.kind === 'arena-heap' || r.kind === 'arena-reserved') {
      // A reserved tail belongs to the heap below it; an arena-heap region starts with its heap_info.
      const owner = heapOwner.get(r.kind === 'arena-heap' ? r.start : r.start - (r.start % (64n << 20n)));
      if (owner !== undefined) return add('arena-heaps', r, owner);
    }
    add(isThreadStack(regions, i, pageSize) ? 'stacks' : kindOf(r), r);
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
