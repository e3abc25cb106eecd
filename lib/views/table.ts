// The table of rows that Markdown and HTML show beside the findings and the
// chart: which rows (for a charted experiment, the ones its chart labels)
// and which columns, as text cells. Experiments without their own columns
// get one column per plain field.
import type { ChunkHeader } from '../chunk';
import { ChunkSizeRow } from '../experiments/chunk-sizes';
import { FreeRow } from '../experiments/free';
import { HeapGrowthRow } from '../experiments/heap-growth';
import { LayoutRow } from '../experiments/layout';
import { MmapThresholdRow, ThresholdProbeRow } from '../experiments/mmap-threshold';
import { ResultData } from '../result-data';
import { hex } from '../format';
import { lookup } from '../validate';
import { chunkSizeTableRows } from './charts/chunk-sizes';
import { breakOf, freeTableRows } from './charts/free';
import { heapGrowthTableRows } from './charts/heap-growth';
import { probeRows } from './charts/mmap-threshold';
import { flagLetters } from './inspect';

export interface Column<Row> {
  title: string;
  /** Right-aligned. */
  numeric?: boolean;
  value(row: Row, index: number): string | number | bigint | boolean | undefined;
}

interface Spec<Row> {
  /** Which rows, and their index in the chart where it numbers them. */
  select(rows: readonly Row[]): { row: Row; index: number }[];
  /** Says which rows were chosen, for the note under the table. */
  selection: string;
  columns: Column<Row>[];
}

export interface RowTable {
  columns: { title: string; numeric: boolean }[];
  cells: string[][];
  /** Rows in the table, rows the selection chose, rows measured. */
  shown: number;
  selected: number;
  total: number;
  note: string;
}

const all = <Row>(rows: readonly Row[]) => rows.map((row, index) => ({ row, index }));
const withIndex = <Row>(rows: readonly Row[], chosen: readonly Row[]) => chosen.map((row) => ({ row, index: rows.indexOf(row) }));
const delta = (a: bigint, b: bigint) => {
  const d = b - a;
  return d === 0n ? '0' : `${d > 0n ? '+' : '−'}${(d < 0n ? -d : d).toString()}`;
};

const layout: Spec<LayoutRow> = {
  select: all,
  selection: 'every row',
  columns: [
    { title: 'name', value: (r) => r.name },
    { title: 'what', value: (r) => r.what },
    { title: 'address', value: (r) => r.address },
    { title: 'region', value: (r) => (r.region === undefined ? '' : `${r.region.kind} ${r.region.perms} ${r.region.path || 'anonymous'}`) },
    { title: 'region start–end', value: (r) => (r.region === undefined ? '' : `${hex(r.region.start)}–${hex(r.region.end)}`) },
    { title: 'offset (B)', numeric: true, value: (r) => r.offset },
    { title: 'from previous row (B)', numeric: true, value: (r) => r.distance },
  ],
};

const chunkSizes: Spec<ChunkSizeRow> = {
  select: (rows) => withIndex(rows, chunkSizeTableRows(rows)),
  selection: 'the first request of each step of the staircase, then the larger probes',
  columns: [
    { title: 'request (B)', numeric: true, value: (r) => r.request },
    { title: 'chunk size (B)', numeric: true, value: (r) => r.chunkSize },
    { title: 'usable size (B)', numeric: true, value: (r) => r.usableSize },
    { title: 'slack (B)', numeric: true, value: (r) => r.slack },
    { title: 'rule (B)', numeric: true, value: (r) => r.ruleSize },
    { title: 'mmapped', value: (r) => r.header.isMmapped },
    { title: 'address', value: (r) => r.address },
    { title: 'break moved (B)', numeric: true, value: (r) => r.breakMoved },
  ],
};

const heapGrowth: Spec<HeapGrowthRow> = {
  select: (rows) => withIndex(rows, heapGrowthTableRows(rows)),
  selection: 'the first malloc, every step that moved the break, the last free',
  columns: [
    { title: 'step', value: (r) => `${r.op} ${r.n}` },
    { title: 'requested, live (B)', numeric: true, value: (r) => r.requested },
    { title: 'break before', value: (r) => r.breakBefore },
    { title: 'break after', value: (r) => r.breakAfter },
    { title: 'break moved (B)', numeric: true, value: (r) => delta(r.breakBefore, r.breakAfter) },
    { title: 'top before (B)', numeric: true, value: (r) => r.topBefore },
    { title: 'top after (B)', numeric: true, value: (r) => r.topAfter },
  ],
};

const mmapThreshold: Spec<MmapThresholdRow> = {
  // Numbered as on the chart's x axis: the probes in the order they ran.
  select: (rows) => probeRows(rows).map((row, i) => ({ row, index: i })),
  selection: 'every probe (the trim run is in the findings)',
  columns: [
    { title: 'probe', numeric: true, value: (_, i) => i + 1 },
    { title: 'phase', value: (r) => r.phase },
    { title: 'role', value: (r) => (r as ThresholdProbeRow).role },
    { title: 'request (B)', numeric: true, value: (r) => (r as ThresholdProbeRow).request },
    { title: 'chunk size (B)', numeric: true, value: (r) => (r as ThresholdProbeRow).chunkSize },
    { title: 'header size (B)', numeric: true, value: (r) => (r as ThresholdProbeRow).headerSize },
    { title: 'served by', value: (r) => (r as ThresholdProbeRow).servedBy },
    { title: 'top before (B)', numeric: true, value: (r) => r.topBefore },
    { title: 'break moved (B)', numeric: true, value: (r) => delta(r.breakBefore, r.breakAfter) },
  ],
};

const free: Spec<FreeRow> = {
  select: (rows) => withIndex(rows, freeTableRows(rows)),
  selection: 'the first and last step of each case, every step that moved the break, the trims and the steps where the RSS is labelled',
  columns: [
    { title: 'step', numeric: true, value: (_, i) => i + 1 },
    { title: 'case', value: (r) => r.phase },
    { title: 'op', value: (r) => (r.kind === 'step' ? `${r.op}${r.role ? ` ${r.role}` : ''}` : `free block ${r.block}`) },
    { title: 'chunk size (B)', numeric: true, value: (r) => r.chunkSize },
    { title: 'break', value: (r) => breakOf(r) },
    { title: 'top (B)', numeric: true, value: (r) => (r.kind === 'step' ? r.top : r.topAfter) },
    { title: 'RSS (pages)', numeric: true, value: (r) => (r.kind === 'step' ? r.rssPages : undefined) },
    { title: 'mmapped (B)', numeric: true, value: (r) => (r.kind === 'step' ? r.mmappedBytes : undefined) },
    { title: 'trim returned', value: (r) => (r.kind === 'step' ? r.released : r.returned) },
  ],
};

// Each spec reads its experiment's own row type; the name says which.
const SPECS: Record<string, Spec<any>> = {
  layout, 'chunk-sizes': chunkSizes, 'heap-growth': heapGrowth, 'mmap-threshold': mmapThreshold, free,
};

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
function genericSpec(rows: readonly object[]): Spec<object> {
  const keys: string[] = [];
  for (const row of rows) {
    for (const [k, v] of Object.entries(row)) if (!keys.includes(k) && cell(v) !== '') keys.push(k);
  }
  return {
    select: all,
    selection: 'the rows in the order measured',
    columns: keys.map((k) => ({
      title: k,
      numeric: rows.some((r) => typeof (r as Record<string, unknown>)[k] === 'number'),
      value: (r: object) => (r as Record<string, unknown>)[k] as string | undefined,
    })),
  };
}

function specOf(result: Pick<ResultData, 'name' | 'rows'>): Spec<object> {
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
