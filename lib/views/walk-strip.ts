// The terminal view of a walk: a strip of cells, one per chunk or per fixed
// span of bytes, and a summary with the mallinfo2() comparison.
import { hex, shortBytes } from '../format';
import type { ChunkState, HeapRegionWalk } from '../walk/heap-walk';
import type { HeapWalkData } from '../walk/walk-data';

export interface StripOptions {
  /** ANSI colours (default off; the CLI decides with views/terminal's terminalOptions). */
  color?: boolean;
  /** Cells a line (default 80). */
  width?: number;
  /** The most lines one heap's strip takes (default 8). */
  rows?: number;
}

/** What a strip cell shows: a chunk state, or one of heapscope's own allocations, or the tcache struct. */
export type Cell = ChunkState | 'ours' | 'struct';

const SYMBOL: Record<Cell, string> = {
  'in-use': '#', free: '.', tcache: 't', top: '~', fencepost: '|', ours: '@', struct: 'S',
};
// Top is bright blue (94): plain blue (34) all but vanishes on a black terminal.
const COLOUR: Record<Cell, number> = {
  'in-use': 37, free: 32, tcache: 36, top: 94, fencepost: 90, ours: 35, struct: 33,
};
/** Every cell kind with its label, in the order legends list them (the terminal's and the SVG's). */
export const LEGEND: readonly (readonly [Cell, string])[] = [
  ['in-use', 'in use (or fastbin)'], ['free', 'free (in a bin)'], ['tcache', 'in tcache'], ['ours', 'heapscope allocation'],
  ['struct', 'tcache_perthread_struct'], ['top', 'top'], ['fencepost', 'fencepost'],
];
// When a span holds several kinds, the rarer, more telling one is shown.
export const PRIORITY: readonly Cell[] = ['ours', 'struct', 'tcache', 'free', 'fencepost', 'in-use', 'top'];

function cellOf(chunk: HeapRegionWalk['chunks'][number]): Cell {
  if (chunk.allocation !== undefined) return 'ours';
  if (chunk.tcacheStruct) return 'struct';
  return chunk.state;
}

function paint(cell: Cell, text: string, color: boolean): string {
  return color ? `\u001b[${COLOUR[cell]}m${text}\u001b[0m` : text;
}

/** The cells of one heap: one per chunk when they fit in `cells`, else one per span of equal bytes. */
export function stripCells(heap: HeapRegionWalk, cells: number): { cells: Cell[]; span?: number } {
  const chunks = heap.chunks;
  if (chunks.length <= cells) return { cells: chunks.map(cellOf) };
  const first = chunks[0].address;
  const last = chunks[chunks.length - 1];
  const total = Number(last.address - first) + last.size;
  const span = Math.ceil(total / cells / 16) * 16;
  const count = Math.ceil(total / span);
  // Per cell, the kinds seen: a bit per PRIORITY position.
  const seen = new Uint8Array(count);
  const rank = new Map(PRIORITY.map((c, i) => [c, i]));
  for (const chunk of chunks) {
    const offset = Number(chunk.address - first);
    const bit = 1 << rank.get(cellOf(chunk))!;
    const end = Math.min(count - 1, Math.floor((offset + chunk.size - 1) / span));
    for (let c = Math.floor(offset / span); c <= end; c++) seen[c] |= bit;
  }
  return { cells: Array.from(seen, (bits) => PRIORITY[31 - Math.clz32(bits & -bits)]), span };
}

/** `main_arena [heap] 0x…-0x… (132 KiB)`. */
export function heapTitle(heap: HeapRegionWalk): string {
  const where = heap.kind === 'heap' ? 'main_arena [heap]' : `thread arena ${hex(heap.arena as bigint)}, heap`;
  return `${where} ${hex(heap.start)}-${hex(heap.end)} (${shortBytes(Number(heap.end - heap.start))})`;
}

/** `N chunks: in use …, free …, in tcache …, top …`. */
export function totalsLine(heap: HeapRegionWalk): string {
  const t = heap.totals;
  return `${t.chunks} chunks: in use ${t.inUse.count} (${shortBytes(t.inUse.size)}), free ${t.free.count} (${shortBytes(t.free.size)}), ` +
    `in tcache ${t.tcache.count} (${shortBytes(t.tcache.size)}), top ${shortBytes(t.top)}`;
}

function renderHeap(heap: HeapRegionWalk, width: number, rows: number, color: boolean): string[] {
  const lines = [heapTitle(heap)];
  const { cells, span } = stripCells(heap, width * rows);
  for (let i = 0; i < cells.length; i += width) {
    // One colour code per run of equal cells, not per cell.
    const row = cells.slice(i, i + width);
    let line = '';
    for (let j = 0; j < row.length;) {
      let k = j;
      while (k < row.length && row[k] === row[j]) k++;
      line += paint(row[j], SYMBOL[row[j]].repeat(k - j), color);
      j = k;
    }
    lines.push(line);
  }
  lines.push(span === undefined ? '  one cell per chunk' : `  one cell per ${shortBytes(span)}; a cell shows the first of ${PRIORITY.map((c) => SYMBOL[c]).join(' ')} found in it`);
  lines.push(`  ${totalsLine(heap)}`);
  lines.push(heap.complete ? '  walked to the end: the chunk sizes tile the heap exactly' : `  walk stopped: ${heap.reason}`);
  return lines;
}

function wrap(words: string[], width: number): string[] {
  const lines: string[] = [];
  let line = ' ';
  for (const word of words) {
    if (line.length + 1 + word.length > width) {
      lines.push(line);
      line = ' ';
    }
    line += ` ${word}`;
  }
  if (line.trim() !== '') lines.push(line);
  return lines;
}

/** The whole terminal view of a walk. */
export function renderWalk(walk: HeapWalkData, options: StripOptions = {}): string {
  const color = options.color ?? false;
  const width = Math.max(16, options.width ?? 80);
  const rows = Math.max(1, options.rows ?? 8);
  const lines: string[] = [];
  // Wrapped on the plain text, painted after: escape codes take no columns.
  for (const line of wrap(LEGEND.map(([, label], k) => `${k}\u0000${label}`), width)) {
    lines.push(line.replace(/(\d)\u0000/g, (_, k: string) => `${paint(LEGEND[Number(k)][0], SYMBOL[LEGEND[Number(k)][0]], color)} `));
  }
  lines.push('');
  for (const heap of [walk.main, ...walk.threadHeaps]) lines.push(...renderHeap(heap, width, rows, color), '');
  if (walk.tcache !== undefined) {
    const t = walk.tcache;
    const used = t.bins.filter((b) => b.count > 0);
    lines.push(`tcache of this thread at ${hex(t.address)}: ${t.chunks} chunks (${shortBytes(t.bytes)}) in ${used.length} of ${t.bins.length} bins` +
      (used.length > 0 ? ' (chunk size × count):' : ''));
    lines.push(...wrap(used.map((b) => `${b.chunkSize}×${b.count}`), width));
    for (const b of t.bins) if (b.reason !== undefined) lines.push(`  bin ${b.index} (${b.chunkSize}): ${b.reason}`);
    if (t.liveReads > 0) {
      lines.push(`  ${t.liveReads} entries lay outside the snapshot and were read afterwards (--arena all puts every arena heap in the snapshot)`);
    }
  } else lines.push(`tcache: not decoded (${walk.tcacheReason})`);
  lines.push(
    `mallinfo2 (same native call${walk.stable ? ', unchanged across the snapshot' : ', changed while the snapshot was taken'}; ` +
      `${walk.singleArena ? 'main_arena is the only arena, so every line must match' : 'other arenas exist, so only keepcost must match'}):`,
  );
  for (const c of walk.checks) {
    const mark = c.equal ? '=' : '≠';
    lines.push(`  ${c.mallinfo} ${c.mallinfoValue} ${mark} ${c.walkValue} ${c.walk}${c.exact ? '' : ' (sums every arena)'}`);
  }
  return lines.join('\n');
}
