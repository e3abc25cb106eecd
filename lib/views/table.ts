// An experiment's table, from its one table spec, as text cells for any
// view: the terminal, Markdown and HTML (and so notebooks) all draw the same
// title, lines, columns and note, each keeping as many lines as it has room
// for. Experiments without a spec get one column per plain field.
import type { ChunkHeader } from '../chunk';
import { ResultData } from '../result-data';
import { hex, plural } from '../format';
import { allRows, CellValue, ColourName, Column, firstAndLast, TableSpec } from '../table-spec';
import { lookup } from '../validate';
import { flagLetters } from './inspect';

/** Lines a terminal shows before it leaves some out. */
export const TERMINAL_ROWS = 20;

export interface RowTableColumn {
  title: string;
  /** The terminal's header. */
  short: string;
  align: 'left' | 'right';
  wrap: boolean;
  path: boolean;
  drop?: number;
}

export interface RowTableLine {
  cells: string[];
  /** Each cell's colour in a terminal. */
  colours: (ColourName | undefined)[];
}

export interface RowTable {
  title: string;
  columns: RowTableColumn[];
  lines: RowTableLine[];
  /** Positions in `lines` before which lines of the table were left out: a ⋮ row goes there. */
  cuts: number[];
  /** Lines shown, lines the spec selected, rows measured. */
  shown: number;
  selected: number;
  total: number;
  /** How many lines of which rows: the sentence under the table. */
  note: string;
}

// Each experiment's own table, by name (lib/experiments/presentations.ts),
// filled by the entry points (lib/present.ts).
const SPECS: Record<string, TableSpec<any, any>> = Object.create(null);

/** Gives the named experiments their own tables. */
export function installTables(specs: Readonly<Record<string, TableSpec<any, any>>>): void {
  Object.assign(SPECS, specs);
}

/** A value as a table cell: addresses in hex, flags as yes/no, nothing as empty. */
export function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'bigint') return hex(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    // A chunk header: its size and flags; a region: its kind and range.
    if (typeof o.rawSize === 'bigint') return `${o.size} ${flagLetters(o as unknown as ChunkHeader).join('')}`.trim();
    if (typeof o.start === 'bigint' && typeof o.end === 'bigint') return `${o.kind ?? ''} ${hex(o.start)}–${hex(o.end)}`.trim();
    return '';
  }
  return String(value);
}

/** Every field that some row has as a value a cell can show. */
function genericSpec(rows: readonly object[]): TableSpec<object> {
  const keys: string[] = [];
  for (const row of rows) {
    for (const [k, v] of Object.entries(row)) if (!keys.includes(k) && cell(v) !== '') keys.push(k);
  }
  return {
    title: 'Rows',
    select: allRows,
    selection: 'in the order measured',
    columns: keys.map((k): Column<object> => ({
      title: k,
      align: rows.some((r) => typeof (r as Record<string, unknown>)[k] === 'number') ? 'right' : 'left',
      // A chunk header or a region shows as its cell() text.
      value: (r) => cell((r as Record<string, unknown>)[k]) as CellValue,
    })),
  };
}

/** The sentence under a table: how many lines it shows, of which rows, of how many measured. */
export function tableNote(shown: number, selected: number, total: number, selection: string): string {
  const count = shown < selected ? `${shown} of ${selected} rows` : selected === total ? (total === 1 ? 'The one row' : `All ${total} rows`) : plural(selected, 'row');
  return `${count} (${selection})${selected < total ? ` of the ${total} measured` : ''}.`;
}

/** The table of a result's rows, with at most `limit` of the lines its spec selects. */
export function resultTable(result: Pick<ResultData, 'name' | 'rows'>, limit: number): RowTable {
  const spec: TableSpec<object, unknown> = lookup(SPECS, result.name) ?? genericSpec(result.rows);
  const selected = spec.select(result.rows);
  const kept = (spec.keep?.(selected.map((s) => s.line), limit) ?? firstAndLast(selected.length, limit)).slice(0, limit);
  const lines = kept.map((k) => {
    const { line, index } = selected[k];
    return { cells: spec.columns.map((c) => cell(c.value(line, index))), colours: spec.columns.map((c) => c.colour?.(line)) };
  });
  const total = result.rows.length;
  return {
    title: typeof spec.title === 'function' ? spec.title(result.rows) : spec.title,
    columns: spec.columns.map((c) => ({
      title: c.title, short: c.short ?? c.title, align: c.align ?? 'left', wrap: c.wrap === true, path: c.path === true, drop: c.drop,
    })),
    lines,
    cuts: kept.map((k, i) => (k !== (i === 0 ? 0 : kept[i - 1] + 1) ? i : -1)).filter((i) => i >= 0),
    shown: lines.length,
    selected: selected.length,
    total,
    note: tableNote(lines.length, selected.length, total, spec.selection),
  };
}
