// The table of rows that Markdown and HTML show beside the findings and the
// chart, as text cells, from an experiment's own table spec (which rows, for
// a charted experiment the ones its chart labels, and which columns).
// Experiments without their own columns get one column per plain field.
import type { ChunkHeader } from '../chunk';
import { ResultData } from '../result-data';
import { hex } from '../format';
import { allRows, TableSpec } from '../table-spec';
import { lookup } from '../validate';
import { flagLetters } from './inspect';

export interface RowTable {
  columns: { title: string; numeric: boolean }[];
  cells: string[][];
  /** Rows in the table, rows the selection chose, rows measured. */
  shown: number;
  selected: number;
  total: number;
  note: string;
}

// Each experiment's own table, by name (lib/experiments/presentations.ts), filled by
// the entry points (lib/present.ts); an experiment without one gets a
// column per plain field.
const SPECS: Record<string, TableSpec<any>> = Object.create(null);

/** Gives the named experiments their own tables. */
export function installTables(specs: Readonly<Record<string, TableSpec<any>>>): void {
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
    select: allRows,
    selection: 'the rows in the order measured',
    columns: keys.map((k) => ({
      title: k,
      numeric: rows.some((r) => typeof (r as Record<string, unknown>)[k] === 'number'),
      value: (r: object) => (r as Record<string, unknown>)[k] as string | undefined,
    })),
  };
}

function specOf(result: Pick<ResultData, 'name' | 'rows'>): TableSpec<object> {
  return lookup(SPECS, result.name) ?? genericSpec(result.rows);
}

/** The rows a result's table shows, in order, before any limit; the terminal shows the same choice. */
export function tableRows(result: Pick<ResultData, 'name' | 'rows'>): object[] {
  return specOf(result).select(result.rows).map(({ row }) => row);
}

/** One column per plain field that some row has, as text cells: for rows without columns of their own. */
export function plainColumns(rows: readonly object[]): { title: string; numeric: boolean; text(row: object): string }[] {
  return genericSpec(rows).columns.map((c) => ({ title: c.title, numeric: c.numeric === true, text: (row: object) => cell(c.value(row, 0)) }));
}

/** The table of a result's rows: at most `limit` of the rows its selection picks. */
export function resultTable(result: ResultData, limit: number): RowTable {
  const spec = specOf(result);
  const selected = spec.select(result.rows);
  const shown = selected.slice(0, limit);
  const cells = shown.map(({ row, index }) => spec.columns.map((c) => cell(c.value(row, index))));
  const total = result.rows.length;
  const note =
    (shown.length < selected.length ? `The first ${shown.length} of ` : `${shown.length === total ? 'All' : ''} `) +
    `${selected.length} rows (${spec.selection})` +
    (selected.length < total ? ` of the ${total} measured` : '') + '; sizes in bytes, addresses in hex.';
  return {
    columns: spec.columns.map((c) => ({ title: c.title, numeric: c.numeric === true })),
    cells,
    shown: shown.length,
    selected: selected.length,
    total,
    note: note.trim().replace(/^./, (c) => c.toUpperCase()),
  };
}
