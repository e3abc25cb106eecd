// A table of an experiment's rows as data: which rows, which columns, each
// cell as a value. Experiments own theirs (lib/experiments/<name>/table.ts);
// the views turn one into Markdown and HTML (lib/views/table.ts).

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
