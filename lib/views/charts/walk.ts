// A heap walk as an SVG strip: the cells the terminal strip draws
// (lib/views/walk-strip.ts's stripCells), one rect each, a row per line, each
// row labelled with its first address on the left and the bytes it covers
// on the right.
import { hex, shortBytes } from '../../format';
import type { HeapRegionWalk } from '../../walk/heap-walk';
import { HeapWalkData, walkRegions, WalkSVGOptions } from '../../walk/walk-data';
import { COLORS } from '../../chart-model';
import { el, esc, legend, svgDocument, text } from '../svg';
import { Cell, heapTitle, LEGEND, placeText, PRIORITY, stripCells, totalsLine } from '../walk-strip';

export type { WalkSVGOptions } from '../../walk/walk-data';

export const CELL_COLOR: Record<Cell, string> = {
  'in-use': '#bab0ac', ours: COLORS.purple, struct: COLORS.yellow, tcache: COLORS.teal, fastbin: COLORS.orange, bin: COLORS.green,
  top: COLORS.blue, fencepost: COLORS.brown, unlisted: COLORS.red,
};

const WIDTH = 820;
const LEFT = 118;
const RIGHT = 84;
const ROW = 15;
const LINE = 16;

/** The cells of one heap with where each starts and how many bytes it covers. */
export interface StripRow {
  address: bigint;
  bytes: number;
  cells: { cell: Cell; address: bigint; bytes: number; label: string }[];
}

/** One heap's strip, row by row: the same cells as the terminal's. */
export function stripRows(heap: HeapRegionWalk, columns: number, rows: number): { rows: StripRow[]; span?: number } {
  const { cells, span } = stripCells(heap, columns * rows);
  const out: StripRow[] = [];
  const first = heap.chunks.length > 0 ? heap.chunks[0].address : heap.firstChunk;
  const last = heap.chunks[heap.chunks.length - 1];
  const endOffset = last === undefined ? 0 : Number(last.address - first) + last.size;
  for (let i = 0; i < cells.length; i += columns) {
    const row: StripRow = { address: 0n, bytes: 0, cells: [] };
    for (let k = i; k < Math.min(cells.length, i + columns); k++) {
      if (span === undefined) {
        const chunk = heap.chunks[k];
        const owner = chunk.allocation === undefined ? '' : `, heapscope ${chunk.allocation.call}(${chunk.allocation.requested})`;
        row.cells.push({ cell: cells[k], address: chunk.address, bytes: chunk.size, label: `${hex(chunk.address)}: ${chunk.size} B, ${placeText(chunk)}${owner}` });
      } else {
        const bytes = Math.min(span, endOffset - k * span);
        const address = first + BigInt(k * span);
        row.cells.push({ cell: cells[k], address, bytes, label: `${hex(address)}-${hex(address + BigInt(bytes))}: ${shortBytes(bytes)}, shows ${cells[k]}` });
      }
    }
    row.address = row.cells[0].address;
    row.bytes = row.cells.reduce((sum, c) => sum + c.bytes, 0);
    out.push(row);
  }
  return span === undefined ? { rows: out } : { rows: out, span };
}

function heapBlock(heap: HeapRegionWalk, y: number, columns: number, rows: number): { svg: string; height: number } {
  const { rows: strip, span } = stripRows(heap, columns, rows);
  const cellWidth = (WIDTH - LEFT - RIGHT) / columns;
  const parts = [text(12, y + 12, heapTitle(heap), { 'font-weight': 'bold' })];
  let at = y + LINE + 4;
  for (const row of strip) {
    parts.push(text(LEFT - 6, at + ROW - 4, hex(row.address), { 'text-anchor': 'end', 'font-family': 'monospace', 'font-size': 10 }));
    row.cells.forEach((c, k) => {
      // A <title> per cell: the browser shows it on hover.
      parts.push(el('rect', {
        class: 'cell', 'data-cell': c.cell, x: LEFT + k * cellWidth, y: at, width: cellWidth, height: ROW - 2,
        fill: CELL_COLOR[c.cell], stroke: '#fff', 'stroke-width': 0.5,
      }, el('title', {}, esc(c.label))));
    });
    parts.push(text(LEFT + row.cells.length * cellWidth + 6, at + ROW - 4, shortBytes(row.bytes), { 'font-size': 10 }));
    at += ROW;
  }
  const scale = span === undefined
    ? 'one cell per chunk; left: a row\'s first address, right: the bytes its chunks cover'
    : `one cell per ${shortBytes(span)}, showing the first of ${PRIORITY.join(', ')} in it; left: a row's first address, right: its bytes`;
  parts.push(text(LEFT, at + 12, scale, { fill: '#555', 'font-size': 10 }));
  parts.push(text(LEFT, at + 12 + LINE, totalsLine(heap.totals)));
  at += 12 + LINE;
  if (!heap.complete) {
    parts.push(text(LEFT, at + LINE, `walk stopped: ${heap.reason ?? 'no reason given'}`, { fill: COLORS.red }));
    at += LINE;
  }
  return { svg: el('g', { class: 'heap' }, parts.join('')), height: at - y + 14 };
}

/** The whole walk: a legend, then each heap's strip (main_arena's first), with its totals. */
export function walkSVG(walk: HeapWalkData, options: WalkSVGOptions = {}): string {
  const columns = Math.max(8, Math.floor(options.columns ?? 64));
  const rows = Math.max(1, Math.floor(options.rows ?? 8));
  const parts: string[] = [];
  // Three legend rows: nine entries do not fit in one at this width.
  const entries = LEGEND.map(([cell, label]) => ({ label, color: CELL_COLOR[cell], box: true }));
  parts.push(legend(12, 18, entries.slice(0, 4)), legend(12, 36, entries.slice(4, 7)), legend(12, 54, entries.slice(7)));
  let y = 66;
  for (const heap of walkRegions(walk)) {
    const block = heapBlock(heap, y, columns, rows);
    parts.push(block.svg);
    y += block.height;
  }
  const title = `The heap walked${walk.pid === undefined ? '' : ` (process ${walk.pid})`}: ${heapTitle(walk.main)}, ${walk.main.totals.chunks} chunks` +
    (walk.mainTop === undefined ? '' : ", and main_arena's top outside it") +
    (walk.threadHeaps.length > 0 ? `, and ${walk.threadHeaps.length} thread-arena heaps` : '');
  return svgDocument(WIDTH, Math.ceil(y), title, parts.join(''));
}
