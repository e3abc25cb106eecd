// How an experiment presents its rows, as data the generic views render:
// its document table (Markdown, HTML), its chart (SVG, in HTML too), its
// terminal table and, where it has one, its terminal chart. Each
// experiment's folder holds its own; the entry points hand them to the
// views (lib/present.ts).
import type { Figure, TerminalChart } from './chart-model';
import type { ResultData } from './result-data';
import type { TableSpec, TerminalTable } from './table-spec';

export interface TerminalView<Row extends object, Chosen = Row> {
  /** `chosen`: the rows the document table shows; a terminal view shows those where it tells the same story. */
  table(rows: Row[], chosen: Chosen[]): TerminalTable<unknown>;
  /** The chart under the table, for a terminal `width` columns wide; undefined when there is nothing to draw. */
  chart?(result: ResultData<Row>, width: number): TerminalChart | undefined;
}

export interface Presentation<Row extends object = any> {
  table?: TableSpec<Row>;
  /** The figure beside the table; undefined when the rows give nothing to draw. */
  chart?(result: ResultData<Row>): Figure | undefined;
  terminal?: TerminalView<Row, any>;
}
