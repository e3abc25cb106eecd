// Tables for a terminal: borderless, columns wrapped, shortened or dropped to fit the width.
import Table from 'cli-table3';
import type { ColourName } from '../table-spec';
import type { RowTable } from './table';
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

const BORDERLESS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '─', 'mid-mid': ' ', right: '', 'right-mid': '', middle: ' ',
};
/** Columns are set apart by the padding after each plus the `middle` char. */
const GAP = 2;
const MIN_WRAP = 12;
/** Prose narrower than this reads badly: optional columns go before a wrapping column is squeezed below it. */
const COMFORTABLE_WRAP = 24;

/**
 * A borderless cli-table3 table fitted to the width: wrapping and path
 * columns narrowed, optional columns (`drop`) left out before prose is
 * squeezed below a comfortable width, then the rest narrowed further, then
 * columns dropped from the right.
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
  const table = new Table({
    head: columns.map((c) => o.paint('bold', c.head)),
    chars: BORDERLESS,
    colWidths: widths.map((w) => w + 1),
    colAligns: columns.map((c) => c.align ?? 'left'),
    wordWrap: true,
    style: { head: [], border: [], compact: true, 'padding-left': 0, 'padding-right': 1 },
  });
  rows.forEach((row, r) => {
    if (cuts.includes(r)) table.push(columns.map((c) => (c.align === 'right' ? '⋮' : o.paint('dim', '⋮'))));
    table.push(columns.map((c, i) => o.paint(c.colour?.(row), cell(c, row, widths[i]))));
  });
  return table.toString().split('\n');
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
