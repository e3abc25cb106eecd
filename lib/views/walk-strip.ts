// The terminal view of a walk: a strip of cells, one per chunk or per fixed
// span of bytes, and a summary with the mallinfo2() comparison.
import { TOTALLED_FIELDS } from '../allocator/totals';
import { hex, plural, shortBytes } from '../format';
import { PLACES } from '../walk/heap-walk';
import type { HeapChunk, HeapRegionWalk, WalkTotals } from '../walk/heap-walk';
import { HeapWalkData, walkRegions } from '../walk/walk-data';
import { own } from '../validate';

export interface StripOptions {
  /** ANSI colours (default off; the CLI decides with views/terminal's terminalOptions). */
  color?: boolean;
  /** Cells a line (default 80). */
  width?: number;
  /** The most lines one heap's strip takes (default 8). */
  rows?: number;
}

/**
 * What a strip cell shows: a chunk in use (heapscope's own apart), a
 * tcache_perthread_struct, a chunk in a tcache, a fastbin, or one of the
 * unsorted, small and large bins, the top chunk, a fencepost, or a chunk
 * free by its neighbour's P bit that no bin lists.
 */
export type Cell = 'in-use' | 'ours' | 'struct' | 'tcache' | 'fastbin' | 'bin' | 'top' | 'fencepost' | 'unlisted';

const SYMBOL: Record<Cell, string> = {
  'in-use': '#', ours: '@', struct: 'S', tcache: 't', fastbin: 'f', bin: '.', top: '~', fencepost: '|', unlisted: '!',
};
// Top is bright blue (94): plain blue (34) all but vanishes on a black terminal.
const COLOUR: Record<Cell, number> = {
  'in-use': 37, ours: 35, struct: 93, tcache: 36, fastbin: 33, bin: 32, top: 94, fencepost: 90, unlisted: 91,
};
/** Every cell kind with its label, in the order legends list them (the terminal's and the SVG's). */
export const LEGEND: readonly (readonly [Cell, string])[] = [
  ['in-use', 'in use'], ['ours', 'heapscope allocation'], ['tcache', 'in a tcache'], ['fastbin', 'in a fastbin'],
  ['bin', 'in a bin (unsorted, small, large)'], ['struct', 'tcache_perthread_struct'], ['top', 'top'], ['fencepost', 'fencepost'],
  ['unlisted', 'free, in no bin'],
];
// When a span holds several kinds, the rarer, more telling one is shown.
export const PRIORITY: readonly Cell[] = ['unlisted', 'ours', 'struct', 'tcache', 'fastbin', 'bin', 'fencepost', 'in-use', 'top'];

const CELL_OF_PLACE: Record<HeapChunk['place'], Cell> = {
  'in-use': 'in-use', 'tcache-struct': 'struct', tcache: 'tcache', fastbin: 'fastbin', unsorted: 'bin', smallbin: 'bin', largebin: 'bin',
  top: 'top', fencepost: 'fencepost', unlisted: 'unlisted',
};

export function cellOf(chunk: HeapChunk): Cell {
  return chunk.allocation !== undefined ? 'ours' : CELL_OF_PLACE[chunk.place];
}

/** `fastbin 3`, `tcache 12 (this thread's)`, `unsorted, last remainder`: where a chunk is, in words. */
export function placeText(chunk: HeapChunk): string {
  const owner = chunk.owner === 'calling-thread' ? " (this thread's)" : '';
  const bin = chunk.bin === undefined ? '' : ` ${chunk.bin}`;
  return `${chunk.place}${bin}${chunk.tcache === undefined ? '' : owner}${chunk.lastRemainder ? ', last remainder' : ''}`;
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
  const seen = new Uint16Array(count);
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
  const where = heap.kind === 'heap' ? 'main_arena [heap]' : heap.kind === 'top-region' ? "main_arena's top, outside [heap]" : `thread arena ${hex(heap.arena)}, heap`;
  return `${where} ${hex(heap.start)}-${hex(heap.end)} (${shortBytes(Number(heap.end - heap.start))})`;
}

/** `N chunks: in use …, tcache …, fastbin …, …, top …`: every place that holds a chunk. */
export function totalsLine(totals: WalkTotals): string {
  const parts = PLACES.filter((p) => totals.places[p].count > 0 && p !== 'top')
    .map((p) => `${p.replace('-', ' ')} ${totals.places[p].count} (${shortBytes(totals.places[p].size)})`);
  return `${plural(totals.chunks, 'chunk')}: ${[...parts, `top ${shortBytes(totals.places.top.size)}`].join(', ')}`;
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
  lines.push(`  ${totalsLine(heap.totals)}`);
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
  for (const heap of walkRegions(walk)) lines.push(...renderHeap(heap, width, rows, color), '');
  if (walkRegions(walk).length > 1) lines.push(`every region: ${totalsLine(walk.totals)}`);
  for (const t of walk.tcaches) {
    const used = t.bins.filter((b) => b.count > 0);
    lines.push(`tcache ${t.owner === 'calling-thread' ? 'of this thread' : 'of another thread'} at ${hex(t.address)}: ` +
      `${plural(used.reduce((n, b) => n + b.count, 0), 'chunk')} in ${used.length} of ${t.bins.length} bins` + (used.length > 0 ? ' (chunk size × count):' : ''));
    lines.push(...wrap(used.map((b) => `${b.chunks[0]?.size ?? '?'}×${b.count}`), width));
    for (const b of t.bins) if (own(b, 'reason') !== undefined) lines.push(`  bin ${b.index}: ${b.reason}`);
  }
  if (walk.tcaches.length === 0) lines.push('tcache: none found in the regions shown');
  lines.push(...snapshotLines(walk));
  return lines.join('\n');
}

/** How the snapshot was taken, the walk's own mallinfo2() and, for this process, each field against the real one. */
export function snapshotLines(walk: HeapWalkData): string[] {
  const lines = [(walk.consistent
    ? `one snapshot, in one native call while nothing changed it (${walk.attempts} attempt${walk.attempts === 1 ? '' : 's'}); nothing was read after it`
    : `the snapshot was torn after ${plural(walk.attempts, 'attempt')} (${walk.inconsistency}); walked all the same`) +
    (own(walk, 'madeResident') === undefined ? '' : `; ${walk.madeResident}`)];
  if (walk.mallinfo === undefined) {
    lines.push("mallinfo2() as the walk makes it up (every arena, with mp_'s mmapped chunks):");
    for (const f of TOTALLED_FIELDS) lines.push(`  ${f} ${walk.mallinfoTotals[f]}`);
  } else {
    const wrong = walk.checks.filter((c) => !c.equal);
    lines.push(`mallinfo2() of the same native call against the walk's own totals (every arena): ${wrong.length === 0 ? 'every field equal' : `${wrong.length} ${wrong.length === 1 ? 'differs' : 'differ'}`}`);
    for (const c of walk.checks) {
      lines.push(`  ${c.field} ${c.mallinfo} ${c.equal ? '=' : '≠'} ${c.walk}${c.equal ? '' : ` (mallinfo2 ${c.difference > 0 ? '+' : '−'}${Math.abs(c.difference)})`}`);
    }
  }
  for (const p of walk.problems) lines.push(`  problem: ${p}`);
  return lines;
}
