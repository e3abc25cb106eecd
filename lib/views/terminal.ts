// Terminal views of results and of the process map: findings wrapped to the
// width, a compact table of the rows a reader needs, and a small Unicode
// chart where one helps. Colour only when asked (the CLI asks on a TTY,
// never with NO_COLOR); no line is longer than the width.
import { inspect, stripVTControlCharacters } from 'node:util';
import Table from 'cli-table3';
import { rangeError, typeError } from '../errors';
import { breakSteps, HeapGrowthRow } from '../experiments/heap-growth';
import { ChunkSizeRow, stairs } from '../experiments/chunk-sizes';
import { FreeRow } from '../experiments/free';
import { breakOf } from '../experiments/free/table';
import { KernelCallRow } from '../experiments/kernel-calls';
import { LayoutRow } from '../experiments/layout';
import { bracketOf, bracketText, MmapThresholdRow, ThresholdPhase, ThresholdProbeRow } from '../experiments/mmap-threshold';
import { probeRows } from '../experiments/mmap-threshold/table';
import { PagingRow } from '../experiments/paging';
import { TcacheRow } from '../experiments/tcache';
import { ArenaChunkRow, ArenaRow } from '../experiments/arenas';
import { ResultData } from '../result-data';
import { hex, shortBytes, signedBytes, span } from '../format';
import { MemoryRegion, RegionKind } from '../maps';
import { lookup } from '../validate';
import { environmentLine } from './environment';
import { chunkFlags, regionPath } from './inspect';
import { phaseRuns } from './svg';
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
/** Rows a table shows before it summarises the rest. */
const MAX_ROWS = 20;

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

type ColourName = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'blue' | 'magenta' | 'cyan' | 'gray';
type Painter = (colour: ColourName | undefined, text: string) => string;

function painter(on: boolean): Painter {
  return (colour, text) => {
    if (!on || colour === undefined || text === '') return text;
    const [open, close] = inspect.colors[colour] ?? [0, 0];
    return `\x1b[${open}m${text}\x1b[${close}m`;
  };
}

const KIND_COLOUR: Partial<Record<RegionKind, ColourName>> = {
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

interface Column<R> {
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

interface TableView<R> {
  title: string;
  columns: Column<R>[];
  rows: R[];
  /** Rows of the result not shown, summarised in one line. */
  omitted: number;
  /** Where rows were left out between those shown (before the row at each index): a ⋮ row goes there. */
  cuts?: readonly number[];
}

const BORDERLESS = {
  top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
  bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
  left: '', 'left-mid': '', mid: '─', 'mid-mid': ' ', right: '', 'right-mid': '', middle: ' ',
};
/** Columns are set apart by the padding after each plus the `middle` char. */
const GAP = 2;
const MIN_WRAP = 12;

/** A borderless cli-table3 table, columns shrunk (wrap columns) or dropped (from the right) to fit. */
function renderTable<R>(all: Column<R>[], rows: R[], o: Resolved, cuts: readonly number[] = []): string[] {
  const natural = (c: Column<R>) => Math.max(c.head.length, ...rows.map((r) => c.cell(r).length));
  // Each column's padding, the `middle` char between columns: the last has padding but no middle.
  const total = (ws: number[]) => ws.reduce((a, b) => a + b, 0) + GAP * ws.length - 1;
  const fitted = (cs: Column<R>[]) => {
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
  const cell = (c: Column<R>, row: R, width: number) => {
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

function tableLines<R>(view: TableView<R>, name: string, o: Resolved): string[] {
  if (view.rows.length === 0) return [];
  const lines = [...wrap(view.title, o.width).map((l) => o.paint('bold', l)), ...renderTable(view.columns, view.rows, o, view.cuts)];
  if (view.omitted > 0) {
    lines.push(...wrap(`… ${view.omitted} more rows (all of them: heapscope run ${name} --json)`, o.width)
      .map((l) => o.paint('dim', l)));
  }
  return lines;
}

/** At most `max` rows: the first ones and the last few (where runs end), with where the cut is. */
function firstRows<R>(rows: R[], max = MAX_ROWS): { rows: R[]; omitted: number; cuts?: number[] } {
  if (rows.length <= max) return { rows, omitted: 0 };
  const tail = Math.min(3, Math.floor(max / 4));
  return { rows: [...rows.slice(0, max - tail), ...rows.slice(rows.length - tail)], omitted: rows.length - max, cuts: [max - tail] };
}

const right = { align: 'right' as const };
const num = (n: number | undefined) => (n === undefined ? '' : String(n));

// ---------------------------------------------------------------- charts

interface StepChart {
  title: string;
  /** Points of a step function, x ascending: y holds until the next x. */
  xs: number[];
  ys: number[];
  /** Rows of the plot; y is linear over them, from the lowest y to the highest. */
  height: number;
  /** A label on every row (when each row is one value, as on the staircase), else top, middle and bottom. */
  labelEveryRow?: boolean;
  xLabel(x: number): string;
  yLabel(y: number): string;
  xName: string;
  colour: ColourName;
  /** x values per column, when the x axis should fall on whole numbers. */
  perColumn?: number;
  /** Names to print under the x axis where an x starts (phases). */
  marks?: { x: number; label: string }[];
}

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

interface View {
  /** `chosen`: the rows the Markdown and HTML table shows (the experiment's table.ts); a view shows those where it tells the same story. */
  table(rows: object[], chosen: object[]): TableView<unknown>;
  chart?(result: ResultData, o: Resolved): string[];
}

/** An experiment's view; its rows are typed by the experiment's Row type, the chosen ones by what table.ts chooses for it. */
function view<R extends object, C extends object = R>(
  table: (rows: R[], chosen: C[]) => TableView<unknown>, chart?: (result: ResultData<R>, o: Resolved) => string[],
): View {
  return { table: table as unknown as View['table'], chart: chart as View['chart'] };
}

/** A table of any row type (chunk-sizes shows runs, tcache groups), checked where it is written. */
function tableOf<T>(table: TableView<T>): TableView<unknown> {
  return table as TableView<unknown>;
}

const layoutView = view<LayoutRow>(
  (_, chosen) => tableOf({
    title: 'Where each object was, low to high',
    columns: [
      { head: 'object', cell: (r) => r.name },
      { head: 'address', cell: (r) => hex(r.address), ...right },
      { head: 'region', cell: (r) => (r.region === undefined ? '(none)' : r.region.kind), colour: (r) => (r.region && KIND_COLOUR[r.region.kind]) },
      { head: 'offset in it', cell: (r) => (r.offset === undefined ? '' : shortBytes(r.offset)), ...right },
      { head: 'what', cell: (r) => r.what, wrap: true },
    ],
    ...firstRows(chosen),
  }),
  (result, o) => layoutDiagram(result.rows, o),
);

/** The address-ordered objects, highest first, as a vertical bar; the gaps compressed to one labelled line. */
function layoutDiagram(rows: LayoutRow[], o: Resolved): string[] {
  const addressWidth = Math.max(...rows.map((r) => hex(r.address).length));
  const kindWidth = Math.max(...rows.map((r) => (r.region?.kind ?? '').length));
  const lines = wrap('The address space, top to bottom (gaps not to scale, labelled with their size)', o.width).map((l) => o.paint('bold', l));
  const descending = [...rows].reverse();
  descending.forEach((row, i) => {
    const kind = row.region?.kind;
    const bar = o.paint(kind === undefined ? 'dim' : KIND_COLOUR[kind], kind === undefined ? '╋' : '█');
    const prefix = `${hex(row.address).padStart(addressWidth)} ${bar} ${o.paint(kind && KIND_COLOUR[kind], (kind ?? '').padEnd(kindWidth))} `;
    const indent = ' '.repeat(addressWidth + kindWidth + 4);
    const text = wrap(`${row.name}: ${row.what}`, o.width - indent.length);
    lines.push(prefix + text[0], ...text.slice(1).map((l) => indent + l));
    const below = descending[i + 1];
    if (below === undefined) return;
    // The row above says how far it is from the one below it; within one
    // region the bar stays solid, across a region boundary it is dotted.
    const gap = row.distance === undefined ? 'the kernel half of the address space' : `${shortBytes(row.distance)} apart`;
    const same = row.region !== undefined && below.region !== undefined && row.region.start === below.region.start;
    const link = same && kind !== undefined ? o.paint(KIND_COLOUR[kind], '█') : o.paint('dim', '┊');
    lines.push(`${' '.repeat(addressWidth)} ${link} ${o.paint('dim', `↕ ${gap}${same ? ` in the same ${kind} region` : ''}`)}`);
  });
  return lines;
}

const kernelCallsView = view<KernelCallRow>((_, chosen) => tableOf({
  title: 'Each call, and what the kernel saw',
  columns: [
    { head: 'call', cell: (r) => (r.op === 'malloc' ? `malloc(${r.size})` : `free(malloc(${r.size}))`) },
    { head: 'chunk', cell: (r) => String(r.chunkSize), ...right },
    { head: 'M', cell: (r) => (r.mmapped ? 'M' : '') },
    { head: 'break moved', cell: (r) => signedBytes(r.breakDelta), ...right },
    { head: 'top before → after', cell: (r) => `${r.topBefore} → ${r.topAfter}`, ...right },
    { head: 'verdict', cell: (r) => r.verdict, wrap: true, colour: (r) => (r.verdict === 'served from memory it held' ? 'green' : 'yellow') },
  ],
  ...firstRows(chosen),
}));

interface Stair {
  from: number;
  to: number;
  row: ChunkSizeRow;
  count: number;
}

const chunkSizesView = view<ChunkSizeRow>(
  (rows) => {
    // Runs of requests with the same chunk size; a run broken by an odd row
    // (a free chunk handed out whole) shows that row on its own.
    const byRequest = new Map(rows.map((r) => [r.request, r]));
    const runs: Stair[] = stairs(rows).map((s) => ({ from: s.from, to: s.to, row: byRequest.get(s.from)!, count: s.to - s.from + 1 }));
    const odd = runs.filter((s) => s.row.chunkSize !== s.row.ruleSize || s.row.header.isMmapped || s.count === 1 && s.from > 1024);
    const regular = runs.filter((s) => !odd.includes(s));
    const shown = [...regular.slice(0, Math.max(4, MAX_ROWS - odd.length)), ...odd].sort((a, b) => a.from - b.from);
    const covered = shown.reduce((n, s) => n + s.count, 0);
    // A ⋮ where runs that were measured are left out between two shown.
    const cuts = shown.map((_, i) => i).filter((i) => i > 0 && runs.indexOf(shown[i]) !== runs.indexOf(shown[i - 1]) + 1);
    return tableOf({
      title: `Chunk size per request (${rows.length} requests, runs of equal chunk size on one line)`,
      columns: [
        { head: 'requests', cell: (s) => span(s.from, s.to), ...right },
        { head: 'chunk', cell: (s) => String(s.row.chunkSize), ...right },
        { head: 'usable', cell: (s) => String(s.row.usableSize), ...right },
        { head: 'rule says', cell: (s) => String(s.row.ruleSize), ...right, colour: (s) => (s.row.ruleSize !== s.row.chunkSize ? 'yellow' : undefined) },
        { head: 'flags', cell: (s) => chunkFlags(s.row.header) },
        { head: 'address', cell: (s) => hex(s.row.address), ...right },
      ],
      rows: shown,
      cuts,
      omitted: rows.length - covered,
    });
  },
  (result, o) => {
    // The first dozen steps, one row each: enough to see the staircase, few enough to read every size.
    const small = result.rows.filter((r) => r.request <= 1024 && !r.header.isMmapped);
    const steps = stairs(small).slice(0, 12);
    if (steps.length === 0) return [];
    const last = steps[steps.length - 1].to;
    const shown = small.filter((r) => r.request <= last);
    const labelWidth = String(steps[steps.length - 1].chunkSize).length;
    const perColumn = Math.max(1, Math.ceil((last + 1) / (o.width - labelWidth - 2)));
    return stepChart({
      title: `The staircase: chunk size for malloc(0) … malloc(${last}), in bytes`,
      xs: shown.map((r) => r.request),
      ys: shown.map((r) => r.chunkSize),
      // One row per 16-byte chunk size (MALLOC_ALIGNMENT), so each step is one row up.
      height: (Math.max(...shown.map((r) => r.chunkSize)) - Math.min(...shown.map((r) => r.chunkSize))) / 16 + 1,
      labelEveryRow: true,
      xLabel: String,
      yLabel: (y) => String(Math.round(y)),
      xName: `request (bytes, ${perColumn} a column)`,
      colour: 'green',
      perColumn,
    }, o);
  },
);

const heapGrowthView = view<HeapGrowthRow>(
  (rows) => {
    const steps = breakSteps(rows);
    const shown = firstRows(steps);
    return tableOf({
      title: `Every move of the break (${steps.length} of ${rows.length} steps moved it)`,
      columns: [
        { head: 'step', cell: (s) => `${s.op} #${s.n}` },
        { head: 'live requested', cell: (s) => shortBytes(s.requested), ...right },
        { head: 'break after', cell: (s) => hex(s.to), ...right },
        { head: 'moved', cell: (s) => signedBytes(s.size), ...right, colour: (s) => (s.size < 0 ? 'yellow' : 'green') },
        { head: 'missing', cell: (s) => num(s.missing), ...right },
        { head: 'beyond need', cell: (s) => num(s.extra), ...right },
      ],
      rows: shown.rows,
      cuts: shown.cuts,
      omitted: rows.length - shown.rows.length,
    });
  },
  (result, o) => {
    const mallocs = result.rows.filter((r) => r.op === 'malloc');
    if (mallocs.length === 0) return [];
    const start = mallocs[0].breakBefore;
    return stepChart({
      title: `The break above ${hex(start)} as ${mallocs.length} mallocs of ${mallocs[0].size} bytes pile up`,
      xs: [0, ...mallocs.map((r) => r.requested)],
      ys: [0, ...mallocs.map((r) => Number(r.breakAfter - start))],
      height: 10,
      xLabel: (x) => shortBytes(x),
      yLabel: (y) => `+${shortBytes(Math.round(y))}`,
      xName: 'bytes requested',
      colour: 'green',
    }, o);
  },
);

const PHASE_ORDER = (probes: ThresholdProbeRow[]): ThresholdPhase[] => [...new Set(probes.map((r) => r.phase))];

const mmapThresholdView = view<MmapThresholdRow, ThresholdProbeRow>(
  // table.ts's choice (every probe) summed up phase by phase: a line a phase is what fits a terminal.
  (rows, probes) => {
    const phases = PHASE_ORDER(probes).map((phase) => {
      const own = probes.filter((r) => r.phase === phase);
      const measured = own.filter((r) => r.role === 'probe' || r.role === 'sweep');
      return {
        phase,
        freed: own.filter((r) => r.role === 'source').map((r) => r.headerSize),
        probes: measured.length,
        mmapped: measured.filter((r) => r.mmapped).length,
        brk: measured.filter((r) => r.servedBy === 'brk').length,
        bracket: bracketText(bracketOf(rows, phase)),
      };
    });
    return tableOf({
      title: `The threshold, phase by phase (${probes.length} probes; chunk sizes in bytes)`,
      columns: [
        { head: 'phase', cell: (p) => p.phase },
        { head: 'freed first', cell: (p) => p.freed.map((s) => shortBytes(s)).join(', ') || '—', ...right },
        { head: 'probes', cell: (p) => String(p.probes), ...right },
        { head: 'mmapped', cell: (p) => String(p.mmapped), ...right },
        { head: 'grew break', cell: (p) => String(p.brk), ...right },
        { head: 'threshold in', cell: (p) => p.bracket, wrap: true, colour: () => 'cyan' },
      ],
      rows: phases,
      omitted: rows.length - probes.length,
    });
  },
  (result, o) => thresholdStrip(result.rows, o),
);

/** One line per phase: each probe placed by its chunk size on a log scale, ● mmapped, ○ from the heap. */
function thresholdStrip(rows: MmapThresholdRow[], o: Resolved): string[] {
  const all = probeRows(rows);
  const probes = all.filter((r) => r.role === 'probe' || r.role === 'sweep');
  if (probes.length === 0) return [];
  const phases = PHASE_ORDER(all);
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

const freeView = view<FreeRow>(
  (rows) => {
    // The steps a reader follows: starts, probes, trims, the mmapped chunk,
    // and every free that moved the break; the bulk mallocs and frees are in --json.
    // Not the document table's choice (experiments/free/table.ts): that keeps every malloc that grew
    // the break too, which in 20 rows would push the trims out.
    const telling = rows.filter((r, i) => r.kind === 'free-run'
      ? r.returned !== 0
      : r.op === 'start' || r.op === 'trim' || ['probe', 'again', 'chunk'].includes(r.role) || breakOf(r) !== breakOf(rows[i - 1] ?? r) && r.op === 'free');
    const shown = firstRows(telling);
    const before = (r: FreeRow, i: number) => (r.kind === 'free-run' ? r.breakBefore : rows[i - 1]?.phase === r.phase ? breakOf(rows[i - 1]) : r.programBreak);
    const moved = new Map(rows.map((r, i) => [r, Number(breakOf(r) - before(r, i))]));
    return tableOf({
      title: `The steps that tell the story (${telling.length} of ${rows.length})`,
      columns: [
        { head: 'phase', cell: (r) => r.phase },
        { head: 'step', cell: (r) => (r.kind === 'free-run' ? `free block ${r.block}` : [r.op, r.role, r.request === undefined ? '' : `(${shortBytes(r.request)})`, r.pad === undefined ? '' : `pad ${shortBytes(r.pad)}`].filter(Boolean).join(' ')), wrap: true },
        { head: 'break', cell: (r) => hex(breakOf(r)), ...right },
        { head: 'moved', cell: (r) => signedBytes(moved.get(r) ?? 0), ...right },
        { head: 'top', cell: (r) => String(r.kind === 'step' ? r.top : r.topAfter), ...right },
        { head: 'rss pages', cell: (r) => (r.kind === 'step' ? num(r.rssPages) : ''), ...right },
      ],
      rows: shown.rows,
      cuts: shown.cuts,
      omitted: rows.length - shown.rows.length,
    });
  },
  (result, o) => {
    const rows = result.rows;
    if (rows.length === 0) return [];
    const breaks = rows.map(breakOf);
    const low = breaks.reduce((a, b) => (b < a ? b : a));
    const marks = phaseRuns(rows).map((p) => ({ x: p.from, label: p.phase }));
    return stepChart({
      title: `The program break above ${hex(low)} over the ${rows.length} steps`,
      xs: rows.map((_, i) => i),
      ys: breaks.map((b) => Number(b - low)),
      height: 10,
      xLabel: (x) => `step ${x + 1}`,
      yLabel: (y) => `+${shortBytes(Math.round(y))}`,
      xName: 'step',
      colour: 'cyan',
      marks,
    }, o);
  },
);

const tcacheView = view<TcacheRow>((rows) => {
  const requests = [...new Set(rows.map((r) => r.request))];
  const groups = requests.map((request) => {
    const own = rows.filter((r) => r.request === request);
    return {
      request,
      binSize: own[0].binSize,
      frees: own.filter((r) => r.step === 'free').map((r) => `${r.chunk ?? '?'}→${r.went ?? '?'}`).join(' '),
      back: own.filter((r) => r.step === 'remalloc').map((r) => `${r.chunk ?? '?'}←${r.from ?? '?'}`).join(' '),
    };
  });
  const unknown = rows.some((r) => r.step === 'remalloc' && r.chunk === undefined);
  return tableOf({
    title: `Test chunks freed one by one, then malloc'd back (chunk → where it went; chunk ← where it came from${unknown ? '; ? = not a test chunk' : ''})`,
    columns: [
      { head: 'request', cell: (g) => String(g.request), ...right },
      { head: 'chunk', cell: (g) => String(g.binSize), ...right },
      { head: 'frees, in order', cell: (g) => g.frees, wrap: true },
      { head: 'mallocs back, in order', cell: (g) => g.back, wrap: true },
    ],
    rows: groups,
    omitted: rows.filter((r) => r.step === 'drain' || r.step === 'malloc').length,
  });
});

const arenasView = view<ArenaRow>((rows) => {
  const chunks = rows.filter((r): r is ArenaChunkRow => r.what === 'chunk');
  const first = chunks.filter((r) => r.phase === 'first');
  const growth = chunks.filter((r) => r.phase === 'growth');
  const shown = [...first, ...growth.slice(0, 2), ...growth.slice(-1)].filter((r, i, all) => all.indexOf(r) === i);
  return tableOf({
    title: 'Chunks from the main thread and from a worker thread',
    columns: [
      { head: 'thread', cell: (r) => r.thread, colour: (r) => (r.thread === 'worker' ? 'magenta' : undefined) },
      { head: 'phase', cell: (r) => r.phase },
      { head: 'request', cell: (r) => String(r.request), ...right },
      { head: 'address', cell: (r) => hex(r.address), ...right },
      { head: 'chunk', cell: (r) => String(r.header.size), ...right },
      { head: 'flags', cell: (r) => chunkFlags(r.header) },
      { head: 'region', cell: (r) => r.region },
    ],
    rows: shown,
    omitted: rows.length - shown.length,
  });
});

const pagingView = view<PagingRow>((_, chosen) => tableOf({
  title: 'Resident pages of each block, and the process RSS',
  columns: [
    { head: 'block', cell: (r) => `${r.call}(${shortBytes(r.request)}) ${r.block.replace(/^(malloc|calloc)-/, '')}` },
    { head: 'flags', cell: (r) => chunkFlags(r.header) },
    { head: 'moment', cell: (r) => r.moment },
    { head: 'resident', cell: (r) => (r.residentPages === undefined ? '' : `${r.residentPages}/${r.totalPages}`), ...right },
    { head: 'RSS change', cell: (r) => `${r.rssDeltaPages > 0 ? '+' : ''}${r.rssDeltaPages} pages`, ...right },
  ],
  ...firstRows(chosen),
}));

const VIEWS: Record<string, View> = {
  layout: layoutView,
  'kernel-calls': kernelCallsView,
  'chunk-sizes': chunkSizesView,
  'heap-growth': heapGrowthView,
  'mmap-threshold': mmapThresholdView,
  free: freeView,
  tcache: tcacheView,
  arenas: arenasView,
  paging: pagingView,
};

/** An experiment nobody wrote a view for: the columns and rows its Markdown and HTML table has. */
function genericTable(rows: object[], chosen: object[]): TableView<unknown> {
  return tableOf<object>({
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
  const chart = v?.chart?.(result, o) ?? [];
  if (chart.length > 0) lines.push('', ...chart);
  return lines.map((l) => clip(l, o.width)).join('\n');
}

/** The process map as a table: range, permissions, size (and resident size), kind, path. */
export function renderMaps(regions: readonly MemoryRegion[], options?: TerminalOptions): string {
  if (!Array.isArray(regions)) throw typeError(`regions must be an array of MemoryRegion, got ${inspect(regions, { depth: 0 })}`);
  const o = resolve(options);
  const rss = regions.some((r) => r.rss !== undefined);
  const columns: Column<MemoryRegion>[] = [
    { head: 'start', cell: (r) => hex(r.start), ...right },
    { head: 'end', cell: (r) => hex(r.end), ...right, drop: 1 },
    { head: 'perms', cell: (r) => r.perms },
    { head: 'size', cell: (r) => shortBytes(r.size), ...right },
    ...(rss ? [{ head: 'rss', cell: (r: MemoryRegion) => (r.rss === undefined ? '' : shortBytes(r.rss)), ...right, drop: 2 }] : []),
    { head: 'kind', cell: (r) => r.kind, colour: (r) => KIND_COLOUR[r.kind] },
    { head: 'path', cell: regionPath, path: true },
  ];
  return renderTable(columns, [...regions], o).map((l) => clip(l, o.width)).join('\n');
}
