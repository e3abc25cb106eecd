// A table of an experiment's rows as data: which rows, which columns, each
// cell as a value. Experiments own theirs (lib/experiments/<name>/table.ts);
// the views turn one into Markdown and HTML (lib/views/table.ts), and a
// terminal table into lines (lib/views/terminal.ts).
import type { RegionKind } from './maps';

export interface Column<Row> {
  title: string;
  /** Right-aligned. */
  numeric?: boolean;
  value(row: Row, index: number): string | number | bigint | boolean | undefined;
}

export interface TableSpec<Row> {
  /** Which rows, and their index in the chart where it numbers them. */
  select(rows: readonly Row[]): { row: Row; index: number }[];
  /** Says which rows were chosen, for the note under the table. */
  selection: string;
  columns: Column<Row>[];
}

/** Every row, numbered in order. */
export const allRows = <Row>(rows: readonly Row[]) => rows.map((row, index) => ({ row, index }));

/** The chosen rows, each with its index among all rows. */
export const withIndex = <Row>(rows: readonly Row[], chosen: readonly Row[]) => chosen.map((row) => ({ row, index: rows.indexOf(row) }));

/** `b - a` with its sign: `+4096`, `−4096`, `0`. */
export const signedDelta = (a: bigint, b: bigint) => {
  const d = b - a;
  return d === 0n ? '0' : `${d > 0n ? '+' : '−'}${(d < 0n ? -d : d).toString()}`;
};

// ---------------------------------------------------------------- terminal

/** The colours a terminal view may ask for (node:util's inspect.colors names). */
export type ColourName = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'blue' | 'magenta' | 'cyan' | 'gray';

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

/** A table for a terminal: its rows already chosen, how many were left out, and where. */
export interface TerminalTable<R> {
  title: string;
  columns: TerminalColumn<R>[];
  rows: R[];
  /** Rows of the result not shown, summarised in one line. */
  omitted: number;
  /** Where rows were left out between those shown (before the row at each index): a ⋮ row goes there. */
  cuts?: readonly number[];
}

/** A table of any row type (runs, groups), checked where it is written. */
export function terminalTable<T>(table: TerminalTable<T>): TerminalTable<unknown> {
  return table as TerminalTable<unknown>;
}

/** Rows a terminal table shows before it summarises the rest. */
export const TERMINAL_ROWS = 20;

/** At most `max` rows: the first ones and the last few (where runs end), with where the cut is. */
export function firstRows<R>(rows: R[], max = TERMINAL_ROWS): { rows: R[]; omitted: number; cuts?: number[] } {
  if (rows.length <= max) return { rows, omitted: 0 };
  const tail = Math.min(3, Math.floor(max / 4));
  return { rows: [...rows.slice(0, max - tail), ...rows.slice(rows.length - tail)], omitted: rows.length - max, cuts: [max - tail] };
}

/** Spread into a column: right-aligned. */
export const RIGHT = { align: 'right' as const };

/** A count, or nothing when there is none. */
export const countText = (n: number | undefined) => (n === undefined ? '' : String(n));

/** The colour a terminal gives each kind of mapped region. */
export const REGION_COLOUR: Partial<Record<RegionKind, ColourName>> = {
  text: 'blue',
  rodata: 'cyan',
  data: 'cyan',
  bss: 'cyan',
  heap: 'green',
  'arena-heap': 'green',
  stack: 'yellow',
  anonymous: 'magenta',
  vdso: 'red',
  vvar: 'red',
  vsyscall: 'red',
};
