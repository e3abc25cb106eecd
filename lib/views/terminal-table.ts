// Tables for a terminal: borderless, columns wrapped, shortened or dropped to fit the width.
import type { ColourName } from '../table-spec';
import type { RowTable } from './table';
import { cellLines, fitCell } from './terminal-cell';
import { Resolved, wrap } from './terminal-text';

/** A column of a terminal table, its cells already text. */
export interface TerminalColumn<R> {
  head: string;
  cell(row: R): string;
  align?: 'left' | 'right';
  /** Text that may wrap when the table is too wide; other columns keep their width. */
  wrap?: boolean;
  /** A path: when too wide it keeps its end (`…/libc.so.6`) instead of wrapping. */
  path?: boolean;
  /** Left out when the table is still too wide, lowest first; columns without it go last, from the right. */
  drop?: number;
  colour?(row: R): ColourName | undefined;
}

/** Columns are set apart by a space after each and one between them. */
const GAP = 2;
const MIN_WRAP = 12;
/** Prose narrower than this reads badly: optional columns go before a wrapping column is squeezed below it. */
const COMFORTABLE_WRAP = 24;

/**
 * A borderless table fitted to the width: wrapping and path columns
 * narrowed, optional columns (`drop`) left out before prose is squeezed
 * below a comfortable width, then the rest narrowed further, then columns
 * dropped from the right. The head is underlined with `─`; a cell wraps
 * at spaces within its column, and a word wider than the column is cut
 * with `…`.
 */
export function renderTable<R>(all: TerminalColumn<R>[], rows: R[], o: Resolved, cuts: readonly number[] = []): string[] {
  const natural = (c: TerminalColumn<R>) => Math.max(c.head.length, ...rows.map((r) => c.cell(r).length));
  // Each column's padding, the `middle` char between columns: the last has padding but no middle.
  const total = (ws: number[]) => ws.reduce((a, b) => a + b, 0) + GAP * ws.length - 1;
  const fitted = (cs: TerminalColumn<R>[], floor: number) => {
    const widths = cs.map(natural);
    const least = cs.map((c, i) => (c.path ? MIN_WRAP : c.wrap ? Math.min(widths[i], floor) : widths[i]));
    // Take a column from the widest narrowable column at a time, so they end up even.
    while (total(widths) > o.width) {
      const shrinkable = widths.map((w, i) => (w > least[i] ? i : -1)).filter((i) => i >= 0);
      if (shrinkable.length === 0) break;
      widths[shrinkable.reduce((a, b) => (widths[b] > widths[a] ? b : a))]--;
    }
    return widths;
  };
  let columns = all;
  const droppable = all.filter((c) => c.drop !== undefined).sort((a, b) => a.drop! - b.drop!);
  while (total(fitted(columns, COMFORTABLE_WRAP)) > o.width && droppable.length > 0 && columns.length > 1) {
    const victim = droppable.shift();
    columns = columns.filter((c) => c !== victim);
  }
  let widths = fitted(columns, MIN_WRAP);
  while (total(widths) > o.width && columns.length > 1) {
    columns = columns.slice(0, -1);
    widths = fitted(columns, MIN_WRAP);
  }
  const cell = (c: TerminalColumn<R>, row: R, width: number) => {
    const text = c.cell(row);
    return c.path && text.length > width ? `…${text.slice(text.length - width + 1)}` : text;
  };
  const cells = rows.flatMap((row, r) => {
    const line = columns.map((c, i) => o.paint(c.colour?.(row), cell(c, row, widths[i])));
    return cuts.includes(r) ? [columns.map((c) => (c.align === 'right' ? '⋮' : o.paint('dim', '⋮'))), line] : [line];
  });
  return drawTable(columns.map((c) => o.paint('bold', c.head)), cells, widths, columns.map((c) => c.align ?? 'left'));
}

/**
 * The lines of a borderless table whose columns are `widths` wide: the
 * head, a rule of `─` under it when there are rows, then the rows. Cells
 * are text, coloured or not.
 */
export function drawTable(head: string[], rows: string[][], widths: number[], aligns: ('left' | 'right')[]): string[] {
  const lines = drawRow(head, widths, aligns);
  if (rows.length > 0) lines.push(widths.map((w) => '─'.repeat(w + 1)).join(' '));
  for (const row of rows) lines.push(...drawRow(row, widths, aligns));
  return lines;
}

/** One row's lines: each cell wrapped to its column, as tall as its tallest cell, a space after each column and one between. */
function drawRow(cells: string[], widths: number[], aligns: ('left' | 'right')[]): string[] {
  const wrapped = cells.map((text, i) => cellLines(text, widths[i]));
  const height = Math.max(1, ...wrapped.map((l) => l.length));
  const lines: string[] = [];
  for (let k = 0; k < height; k++) {
    lines.push(wrapped.map((l, i) => `${k < l.length ? fitCell(l[k], widths[i], aligns[i]) : ' '.repeat(widths[i])} `).join(' '));
  }
  return lines;
}

/** An experiment's table: its title, the lines, and the note when rows were left out (with where to get them all). */
export function tableLines(table: RowTable, name: string, o: Resolved): string[] {
  if (table.lines.length === 0) return [];
  const columns = table.columns.map((c, i): TerminalColumn<RowTable['lines'][number]> => ({
    head: c.short, cell: (l) => l.cells[i], colour: (l) => l.colours[i], align: c.align, wrap: c.wrap, path: c.path, drop: c.drop,
  }));
  const lines = [...wrap(table.title, o.width).map((l) => o.paint('bold', l)), ...renderTable(columns, table.lines, o, table.cuts)];
  if (table.shown < table.total) {
    lines.push(...wrap(`${table.note} Every row measured: heapscope run ${name} --json`, o.width).map((l) => o.paint('dim', l)));
  }
  return lines;
}
