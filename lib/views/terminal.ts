// Terminal views of results and of the process map: findings wrapped to the
// width, the experiment's table (the one its documents show, fitted to the
// width) and a small Unicode chart where one helps. Colour only when asked
// (the CLI asks on a TTY, never with NO_COLOR); no line is longer than the
// width.
import { inspect } from 'node:util';
import type { TerminalChart } from '../chart-model';
import { rangeError, typeError } from '../errors';
import { hex, shortBytes } from '../format';
import { MemoryRegion } from '../maps';
import { ResultData } from '../result-data';
import { REGION_COLOUR, RIGHT } from '../table-spec';
import { lookup } from '../validate';
import { environmentLine } from './environment';
import { regionPath } from './inspect';
import { resultTable, TERMINAL_ROWS } from './table';
import { terminalChart } from './terminal-charts';
import { renderTable, tableLines, TerminalColumn } from './terminal-table';
import { clip, painter, Resolved, wrap } from './terminal-text';

export interface TerminalOptions {
  /** Columns to fit in; default 80. */
  width?: number;
  /** ANSI colours; default off. */
  color?: boolean;
}

/** Below this nothing useful fits: a table needs a few columns of numbers. */
const MIN_WIDTH = 20;

/**
 * The width and colour a stream gets: its columns on a TTY, else 80;
 * colour on a TTY (or with FORCE_COLOR), never when NO_COLOR is set to
 * anything (https://no-color.org).
 */
export function terminalOptions(
  stream: { isTTY?: boolean; columns?: number } = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): Required<TerminalOptions> {
  const width = stream.isTTY === true && typeof stream.columns === 'number' && stream.columns >= MIN_WIDTH
    ? stream.columns : 80;
  const forced = env.FORCE_COLOR !== undefined && !['', '0', 'false'].includes(env.FORCE_COLOR);
  const color = env.NO_COLOR !== undefined && env.NO_COLOR !== '' ? false
    : forced || (stream.isTTY === true && env.TERM !== 'dumb');
  return { width, color };
}

export function resolve(options: TerminalOptions | undefined): Resolved {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  const width = options.width ?? 80;
  if (typeof width !== 'number' || !Number.isInteger(width)) throw typeError(`options.width must be an integer, got ${inspect(width)}`);
  if (width < MIN_WIDTH) throw rangeError(`options.width must be at least ${MIN_WIDTH}, got ${width}`);
  const color = options.color ?? false;
  if (typeof color !== 'boolean') throw typeError(`options.color must be a boolean, got ${inspect(color)}`);
  return { width, paint: painter(color) };
}

// Each experiment's terminal chart, where it has one, by name
// (lib/experiments/presentations.ts), filled by the entry points
// (lib/present.ts). Its table is the one every view draws (./table.ts).
type ChartOf = (result: ResultData<any>, width: number) => TerminalChart | undefined;
const CHARTS: Record<string, ChartOf> = Object.create(null);

/** Gives the named experiments their own terminal charts. */
export function installTerminalCharts(charts: Readonly<Record<string, ChartOf>>): void {
  Object.assign(CHARTS, charts);
}

/**
 * An experiment result for a terminal: the question, where it ran, the
 * findings and surprises wrapped to the width, the experiment's table (at
 * most TERMINAL_ROWS lines, the rest counted) and a chart where one helps.
 */
export function renderResult(result: ResultData, options?: TerminalOptions): string {
  const o = resolve(options);
  const lines: string[] = [];
  lines.push(...wrap(`== ${result.name}: ${result.question}`, o.width, '', '   ').map((l) => o.paint('bold', l)));
  lines.push(...wrap(`(${environmentLine(result)})`, o.width, '   ').map((l) => o.paint('dim', l)));
  for (const finding of result.findings) {
    const [head, ...rest] = wrap(finding, o.width, '  - ', '    ');
    lines.push(head.replace('-', o.paint('cyan', '-')), ...rest);
  }
  if (result.surprises.length > 0) {
    lines.push(o.paint('yellow', '  Surprises:'));
    for (const surprise of result.surprises) {
      const [head, ...rest] = wrap(surprise, o.width, '  ! ', '    ');
      lines.push(head.replace('!', o.paint('yellow', '!')), ...rest);
    }
  }
  const table = tableLines(resultTable(result, TERMINAL_ROWS), result.name, o);
  if (table.length > 0) lines.push('', ...table);
  const model = lookup(CHARTS, result.name)?.(result, o.width);
  const chart = model === undefined ? [] : terminalChart(model, o);
  if (chart.length > 0) lines.push('', ...chart);
  return lines.map((l) => clip(l, o.width)).join('\n');
}

/** The process map as a table: range, permissions, size (and resident size), kind, path. */
export function renderMaps(regions: readonly MemoryRegion[], options?: TerminalOptions): string {
  if (!Array.isArray(regions)) throw typeError(`regions must be an array of MemoryRegion, got ${inspect(regions, { depth: 0 })}`);
  const o = resolve(options);
  const rss = regions.some((r) => r.rss !== undefined);
  const columns: TerminalColumn<MemoryRegion>[] = [
    { head: 'start', cell: (r) => hex(r.start), ...RIGHT },
    { head: 'end', cell: (r) => hex(r.end), ...RIGHT, drop: 1 },
    { head: 'perms', cell: (r) => r.perms },
    { head: 'size', cell: (r) => shortBytes(r.size), ...RIGHT },
    ...(rss ? [{ head: 'rss', cell: (r: MemoryRegion) => (r.rss === undefined ? '' : shortBytes(r.rss)), ...RIGHT, drop: 2 }] : []),
    { head: 'kind', cell: (r) => r.kind, colour: (r) => REGION_COLOUR[r.kind] },
    { head: 'path', cell: regionPath, path: true },
  ];
  return renderTable(columns, [...regions], o).map((l) => clip(l, o.width)).join('\n');
}
