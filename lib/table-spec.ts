// An experiment's table as data: its title, which rows it shows (and which
// it keeps when a view has room for fewer), its columns, each cell as a
// value. Each experiment declares one (lib/experiments/<name>/table.ts) and
// every view draws that same table: the terminal (lib/views/terminal.ts),
// Markdown, HTML and notebooks (lib/views/table.ts). Where a terminal needs
// less (a narrow window), the spec says so as data: a column's short header
// and the order in which columns may be dropped.
import type { RegionKind } from './maps';

/** The colours a terminal view may ask for (node:util's inspect.colors names). */
export type ColourName = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'blue' | 'magenta' | 'cyan' | 'gray';

/** A cell as a value: bigints show in hex, booleans as yes/no, undefined as an empty cell. */
export type CellValue = string | number | bigint | boolean | undefined;

export interface Column<Line> {
  /** The header, with its unit where the cells have none: in full in Markdown and HTML. */
  title: string;
  /** A shorter header for a terminal, where the width is scarce; the title when absent. */
  short?: string;
  /** `index`: the line's number as the spec's `select` gave it (the chart's numbering, where it has one). */
  value(line: Line, index: number): CellValue;
  align?: 'left' | 'right';
  /** Long text: wraps in a terminal that is too narrow (its other columns keep their width) and in HTML. */
  wrap?: boolean;
  /** A path: in a terminal that is too narrow it keeps its end (`…/libc.so.6`) instead of wrapping. */
  path?: boolean;
  /** Left out of a terminal table that is still too wide, lowest first; columns without it go last, from the right. */
  drop?: number;
  /** The cell's colour in a terminal. */
  colour?(line: Line): ColourName | undefined;
}

export interface TableSpec<Row, Line = Row> {
  /** What the table shows: the line over it in a terminal, its heading in a document. */
  title: string | ((rows: readonly Row[]) => string);
  /** The table's lines, in order, each with its number (a line may be a row, or stand for several). */
  select(rows: readonly Row[]): { line: Line; index: number }[];
  /** Which rows the lines are, for the note under the table. */
  selection: string;
  /**
   * Which of the lines a view with room for only `max` keeps: their
   * positions, ascending. The first ones and the last few when absent.
   */
  keep?(lines: readonly Line[], max: number): number[];
  columns: Column<Line>[];
}

/** Every row, numbered in order. */
export const allRows = <Row>(rows: readonly Row[]) => rows.map((line, index) => ({ line, index }));

/** The chosen rows, each with its index among all rows. */
export const withIndex = <Row, Line extends Row>(rows: readonly Row[], chosen: readonly Line[]) => chosen.map((line) => ({ line, index: rows.indexOf(line) }));

/** Lines numbered by their place in the table: for lines that each stand for several rows. */
export const numbered = <Line>(lines: readonly Line[]) => lines.map((line, index) => ({ line, index }));

/** At most `max` of `count` lines: the first ones and the last few (where runs end). */
export function firstAndLast(count: number, max: number): number[] {
  const all = Array.from({ length: count }, (_, i) => i);
  if (count <= max) return all;
  const tail = Math.min(3, Math.floor(max / 4));
  return [...all.slice(0, max - tail), ...all.slice(count - tail)];
}

/** At most `max` lines, those of the lowest rank first (in order within a rank), shown in their order. */
export function byRank<Line>(rank: (line: Line) => number) {
  return (lines: readonly Line[], max: number): number[] => lines
    .map((line, i) => ({ i, rank: rank(line) }))
    .sort((a, b) => a.rank - b.rank || a.i - b.i)
    .slice(0, max)
    .map((l) => l.i)
    .sort((a, b) => a - b);
}

/** A difference with its sign: `+4096`, `−4096` (a minus sign, U+2212), `0`. */
export function signed(d: number | bigint): string {
  const zero = typeof d === 'bigint' ? 0n : 0;
  return d === zero ? '0' : d > zero ? `+${d}` : `−${String(d).slice(1)}`;
}

/** `b - a` with its sign. */
export const signedDelta = (a: bigint, b: bigint) => signed(b - a);

/** Spread into a column: right-aligned. */
export const RIGHT = { align: 'right' as const };

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
