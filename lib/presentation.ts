// How an experiment presents its rows, as data the generic views render:
// its table (one spec that the terminal, Markdown, HTML and notebooks all
// draw), its chart (SVG, in HTML too) and, where it has one, its terminal
// chart. Each experiment's folder holds its own; the entry points hand them
// to the views (lib/present.ts).
import type { Figure, TerminalChart } from './chart-model';
import type { ResultData } from './result-data';
import type { TableSpec } from './table-spec';

export interface Presentation<Row extends object = any> {
  table: TableSpec<Row, any>;
  /** The figure beside the table; undefined when the rows give nothing to draw. */
  chart?(result: ResultData<Row>): Figure | undefined;
  /** The chart under the table, for a terminal `width` columns wide; undefined when there is nothing to draw. */
  terminalChart?(result: ResultData<Row>, width: number): TerminalChart | undefined;
}
