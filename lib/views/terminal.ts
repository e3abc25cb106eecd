// Terminal views of results and of the process map: findings wrapped to the
// width, a compact table of the rows a reader needs, and a small Unicode
// chart where one helps. Colour only when asked (the CLI asks on a TTY,
// never with NO_COLOR); no line is longer than the width.
import { inspect, stripVTControlCharacters } from 'node:util';
import Table from 'cli-table3';
import type { StepChart } from '../chart-model';
import { rangeError, typeError } from '../errors';
import { LayoutRow } from '../experiments/layout';
import { MmapThresholdRow } from '../experiments/mmap-threshold';
import { phaseOrder, probeRows } from '../experiments/mmap-threshold/table';
import { hex, shortBytes } from '../format';
import { MemoryRegion } from '../maps';
import type { TerminalView } from '../presentation';
import { ResultData } from '../result-data';
import { ColourName, firstRows, REGION_COLOUR, RIGHT, TerminalColumn, TerminalTable, terminalTable } from '../table-spec';
import { lookup } from '../validate';
import { environmentLine } from './environment';
import { regionPath } from './inspect';
import { plainColumns, tableRows } from './table';

export interface TerminalOptions {
  /** Columns to fit in; default 80. */
  width?: number;
  /** ANSI colours; default off. */
  color?: boolean;
}

interface Resolved {
  width: number;
  paint: Painter;
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

function resolve(options: TerminalOptions | undefined): Resolved {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  const width = options.width ?? 80;
  if (typeof width !== 'number' || !Number.isInteger(width)) throw typeError(`options.width must be an integer, got ${inspect(width)}`);
  if (width < MIN_WIDTH) throw rangeError(`options.width must be at least ${MIN_WIDTH}, got ${width}`);
  const color = options.color ?? false;
  if (typeof color !== 'boolean') throw typeError(`options.color must be a boolean, got ${inspect(color)}`);
  return { width, paint: painter(color) };
}

// ---------------------------------------------------------------- colour

type Painter = (colour: ColourName | undefined, text: string) => string;

function painter(on: boolean): Painter {
  return (colour, text) => {
    if (!on || colour === undefined || text === '') return text;
    const [open, close] = inspect.colors[colour] ?? [0, 0];
    return `\x1b[${open}m${text}\x1b[${close}m`;
  };
}


// ---------------------------------------------------------------- text

function visible(text: string): number {
  return stripVTControlCharacters(text).length;
}

/** Last resort for a line nothing else could fit: cut it, dropping its colour. */
function clip(line: string, width: number): string {
  const trimmed = line.replace(/\s+$/, '');
  if (visible(trimmed) <= width) return trimmed;
  return `${stripVTControlCharacters(trimmed).slice(0, width - 1)}…`;
}

/** Words to lines of at most `width`, the first after `first`, the rest after `rest`. */
function wrap(text: string, width: number, first = '', rest = first): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  const room = () => width - line.length;
  for (let word of text.split(/\s+/).filter((w) => w !== '')) {
    if (!empty && word.length + 1 > room()) {
      lines.push(line);
      line = rest;
      empty = true;
    }
    // A word longer than a whole line (a long path) is broken where it must be.
    while (word.length > room() && room() > 0 && empty) {
      lines.push(line + word.slice(0, room()));
      word = word.slice(room());
      line = rest;
    }
    line += empty ? word : ` ${word}`;
    empty = false;
  }
  lines.push(line);
  return lines;
}

// ---------------------------------------------------------------- tables

const BORDERLESS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '─', 'mid-mid': ' ', right: '', 'right-mid': '', middle: ' ',
};
/** Columns are set apart by the padding after each plus the `middle` char. */
const GAP = 2;
const MIN_WRAP = 12;

/** A borderless cli-table3 table, columns shrunk (wrap columns) or dropped (from the right) to fit. */
function renderTable<R>(all: TerminalColumn<R>[], rows: R[], o: Resolved, cuts: readonly number[] = []): string[] {
  const natural = (c: TerminalColumn<R>) => Math.max(c.head.length, ...rows.map((r) => c.cell(r).length));
  // Each column's padding, the `middle` char between columns: the last has padding but no middle.
  const total = (ws: number[]) => ws.reduce((a, b) => a + b, 0) + GAP * ws.length - 1;
  const fitted = (cs: TerminalColumn<R>[]) => {
    const widths = cs.map(natural);
    // Take a column from the widest wrapping column at a time, so they end up even.
    while (total(widths) > o.width) {
      const shrinkable = widths.map((w, i) => ((cs[i].wrap || cs[i].path) && w > MIN_WRAP ? i : -1)).filter((i) => i >= 0);
      if (shrinkable.length === 0) break;
      widths[shrinkable.reduce((a, b) => (widths[b] > widths[a] ? b : a))]--;
    }
    return widths;
  };
  let columns = all;
  let widths = fitted(columns);
  const droppable = all.filter((c) => c.drop !== undefined).sort((a, b) => a.drop! - b.drop!);
  while (total(widths) > o.width && columns.length > 1) {
    const victim = droppable.shift() ?? columns[columns.length - 1];
    columns = columns.filter((c) => c !== victim);
    widths = fitted(columns);
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

function tableLines<R>(view: TerminalTable<R>, name: string, o: Resolved): string[] {
  if (view.rows.length === 0) return [];
  const lines = [...wrap(view.title, o.width).map((l) => o.paint('bold', l)), ...renderTable(view.columns, view.rows, o, view.cuts)];
  if (view.omitted > 0) {
    lines.push(...wrap(`… ${view.omitted} more rows (all of them: heapscope run ${name} --json)`, o.width)
      .map((l) => o.paint('dim', l)));
  }
  return lines;
}

// ---------------------------------------------------------------- charts

/**
 * A step function drawn as a line: a level is ─, a rise ┘…┌ and a fall
 * ┐…└ in one column. Each column shows the value at its end, carried
 * forward between points.
 */
function stepChart(chart: StepChart, o: Resolved): string[] {
  const { xs, ys, height } = chart;
  if (xs.length === 0) return [];
  const yMin = Math.min(...ys);
  const yMax = Math.max(...ys);
  const rowValue = (row: number) => yMin + ((yMax - yMin) * row) / Math.max(1, height - 1);
  const labelRows = new Set(chart.labelEveryRow ? [...Array(height).keys()] : [0, Math.floor((height - 1) / 2), height - 1]);
  const labels = new Map([...labelRows].map((row) => [row, chart.yLabel(rowValue(row))]));
  const labelWidth = Math.max(...[...labels.values()].map((l) => l.length));
  const x0 = xs[0];
  // With whole x values per column the plot ends where the data does.
  const needed = chart.perColumn === undefined ? Infinity : Math.ceil((xs[xs.length - 1] - x0 + 1) / chart.perColumn);
  const plotWidth = Math.min(o.width - labelWidth - 2, needed);
  if (plotWidth < 10) return [];
  const span = chart.perColumn !== undefined ? chart.perColumn * plotWidth : xs[xs.length - 1] - x0 || 1;
  const columnOf = (x: number) => Math.min(plotWidth - 1, Math.floor(((x - x0) / span) * plotWidth));
  const atEnd: (number | undefined)[] = new Array(plotWidth).fill(undefined);
  xs.forEach((x, i) => {
    if (x - x0 < span) atEnd[columnOf(x)] = ys[i];
  });
  const lastColumn = columnOf(Math.min(xs[xs.length - 1], x0 + span - 1));
  const rowOf = (y: number) => Math.round(((y - yMin) / (yMax - yMin || 1)) * (height - 1));
  const grid = Array.from({ length: height }, () => new Array<string>(plotWidth).fill(' '));
  let previous: number | undefined;
  for (let c = 0; c <= lastColumn; c++) {
    const value = atEnd[c] ?? previous;
    if (value === undefined) continue;
    const row = rowOf(value);
    const before = previous === undefined ? row : rowOf(previous);
    if (row === before) grid[row][c] = '─';
    else {
      const [low, high] = row > before ? [before, row] : [row, before];
      for (let r = low + 1; r < high; r++) grid[r][c] = '│';
      grid[before][c] = row > before ? '┘' : '┐';
      grid[row][c] = row > before ? '┌' : '└';
    }
    previous = value;
  }
  const lines = wrap(chart.title, o.width).map((l) => o.paint('bold', l));
  for (let r = height - 1; r >= 0; r--) {
    const label = labels.get(r) ?? '';
    lines.push(`${label.padStart(labelWidth)} ${label ? '┤' : '│'}${o.paint(chart.colour, grid[r].join('').trimEnd())}`);
  }
  lines.push(`${' '.repeat(labelWidth)} └${'─'.repeat(plotWidth)}`);
  const from = chart.xLabel(x0);
  const to = chart.xLabel(xs[xs.length - 1]);
  const gap = plotWidth - from.length - to.length;
  const name = gap >= chart.xName.length + 2 ? chart.xName : '';
  const left = Math.max(1, Math.floor((gap - name.length) / 2));
  lines.push(`${' '.repeat(labelWidth + 2)}${from}${' '.repeat(left)}${name}`.padEnd(labelWidth + 2 + plotWidth - to.length) + to);
  if (chart.marks !== undefined) {
    // Each mark on the first of two lines where it does not run into another.
    const rows = ['', ''];
    for (const mark of chart.marks) {
      const at = labelWidth + 2 + columnOf(mark.x);
      const text = `↑${mark.label}`;
      const free = rows.findIndex((line) => (line === '' || at > line.length) && at + text.length <= o.width);
      if (free >= 0) rows[free] = `${rows[free].padEnd(at)}${text}`;
    }
    lines.push(...rows.filter((line) => line !== ''));
  }
  return lines;
}

// ---------------------------------------------------------------- experiments

/** The address-ordered objects, highest first, as a vertical bar; the gaps compressed to one labelled line. */
function layoutDiagram(rows: LayoutRow[], o: Resolved): string[] {
  const addressWidth = Math.max(...rows.map((r) => hex(r.address).length));
  const kindWidth = Math.max(...rows.map((r) => (r.region?.kind ?? '').length));
  const lines = wrap('The address space, top to bottom (gaps not to scale, labelled with their size)', o.width).map((l) => o.paint('bold', l));
  const descending = [...rows].reverse();
  descending.forEach((row, i) => {
    const kind = row.region?.kind;
    const bar = o.paint(kind === undefined ? 'dim' : REGION_COLOUR[kind], kind === undefined ? '╋' : '█');
    const prefix = `${hex(row.address).padStart(addressWidth)} ${bar} ${o.paint(kind && REGION_COLOUR[kind], (kind ?? '').padEnd(kindWidth))} `;
    const indent = ' '.repeat(addressWidth + kindWidth + 4);
    const text = wrap(`${row.name}: ${row.what}`, o.width - indent.length);
    lines.push(prefix + text[0], ...text.slice(1).map((l) => indent + l));
    const below = descending[i + 1];
    if (below === undefined) return;
    // The row above says how far it is from the one below it; within one
    // region the bar stays solid, across a region boundary it is dotted.
    const gap = row.distance === undefined ? 'the kernel half of the address space' : `${shortBytes(row.distance)} apart`;
    const same = row.region !== undefined && below.region !== undefined && row.region.start === below.region.start;
    const link = same && kind !== undefined ? o.paint(REGION_COLOUR[kind], '█') : o.paint('dim', '┊');
    lines.push(`${' '.repeat(addressWidth)} ${link} ${o.paint('dim', `↕ ${gap}${same ? ` in the same ${kind} region` : ''}`)}`);
  });
  return lines;
}

/** One line per phase: each probe placed by its chunk size on a log scale, ● mmapped, ○ from the heap. */
function thresholdStrip(rows: MmapThresholdRow[], o: Resolved): string[] {
  const all = probeRows(rows);
  const probes = all.filter((r) => r.role === 'probe' || r.role === 'sweep');
  if (probes.length === 0) return [];
  const phases = phaseOrder(all);
  const nameWidth = Math.max(...phases.map((p) => p.length));
  const plotWidth = o.width - nameWidth - 3;
  if (plotWidth < 10) return [];
  const lo = Math.log2(Math.min(...probes.map((r) => r.chunkSize)));
  const hi = Math.log2(Math.max(...probes.map((r) => r.chunkSize)));
  const columnOf = (size: number) => Math.min(plotWidth - 1, Math.round(((Math.log2(size) - lo) / (hi - lo || 1)) * (plotWidth - 1)));
  const indent = ' '.repeat(nameWidth + 3);
  const legend = wrap('● mmapped ○ from the heap ◐ both in one column', o.width, indent)
    .map((l) => l.replace(/[●○◐]/g, (m) => o.paint(m === '●' ? 'red' : m === '○' ? 'green' : 'yellow', m)));
  const lines = [...wrap('Which probes were mmapped, by chunk size (log scale)', o.width).map((l) => o.paint('bold', l)), ...legend];
  for (const phase of phases) {
    const marks: ('m' | 'h' | 'b' | undefined)[] = new Array(plotWidth).fill(undefined);
    for (const r of probes.filter((p) => p.phase === phase)) {
      const c = columnOf(r.chunkSize);
      const mark = r.mmapped ? 'm' : 'h';
      marks[c] = marks[c] === undefined || marks[c] === mark ? mark : 'b';
    }
    const strip = marks.map((m) => (m === 'm' ? o.paint('red', '●') : m === 'h' ? o.paint('green', '○') : m === 'b' ? o.paint('yellow', '◐') : o.paint('dim', '·'))).join('');
    lines.push(`${phase.padStart(nameWidth)} │ ${strip}`);
  }
  // Ticks at the powers of two that fit, so a reader can place a size.
  let axis = '';
  for (let p = Math.ceil(lo); p <= Math.floor(hi); p++) {
    const label = `↑${shortBytes(2 ** p)}`;
    const at = columnOf(2 ** p);
    if (at < axis.length + 1 && axis !== '' || at + label.length > plotWidth) continue;
    axis = `${axis.padEnd(at)}${label}`;
  }
  lines.push(`${' '.repeat(nameWidth + 3)}${axis}`);
  return lines;
}

// Each experiment's terminal table and chart model, by name
// (lib/experiments/presentations.ts), filled by the entry points
// (lib/present.ts).
const VIEWS: Record<string, TerminalView<any, any>> = Object.create(null);

/** Gives the named experiments their own terminal views. */
export function installTerminalViews(views: Readonly<Record<string, TerminalView<any, any>>>): void {
  Object.assign(VIEWS, views);
}

// Charts not yet expressed as a model: drawn here, from the experiment's rows.
const DRAWN: Record<string, (rows: any[], o: Resolved) => string[]> = {
  layout: layoutDiagram,
  'mmap-threshold': thresholdStrip,
};

/** An experiment nobody wrote a view for: the columns and rows its Markdown and HTML table has. */
function genericTable(rows: object[], chosen: object[]): TerminalTable<unknown> {
  return terminalTable<object>({
    title: 'Rows',
    columns: plainColumns(rows).map((c) => ({ head: c.title, cell: c.text, align: c.numeric ? 'right' : 'left' })),
    ...firstRows(chosen),
  });
}

/**
 * An experiment result for a terminal: the question, where it ran, the
 * findings and surprises wrapped to the width, a table of the rows that
 * matter (long row sets summarised) and a chart where one helps.
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
  const v = lookup(VIEWS, result.name);
  const table = tableLines((v?.table ?? genericTable)(result.rows, tableRows(result)), result.name, o);
  if (table.length > 0) lines.push('', ...table);
  const model = v?.stepChart?.(result, o.width);
  const chart = model !== undefined ? stepChart(model, o) : lookup(DRAWN, result.name)?.(result.rows, o) ?? [];
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
