// The chunk-sizes table: which rows it shows and its columns.
import { TableSpec, withIndex } from '../../table-spec';
import { ChunkSizeRow } from './index';

/** The rows the staircase draws: every request malloc served from the heap byte by byte (the probes beyond are mmapped or far off). */
export function staircaseRows(rows: readonly ChunkSizeRow[]): ChunkSizeRow[] {
  const out: ChunkSizeRow[] = [];
  for (const r of rows) {
    if (r.request !== out.length || r.header.isMmapped) break;
    out.push(r);
  }
  return out;
}

/** The rows the table beside shows: the first request of each stair, then the probes. */
export function chunkSizeTableRows(rows: readonly ChunkSizeRow[]): ChunkSizeRow[] {
  const small = staircaseRows(rows);
  const starts = small.filter((r, i) => i === 0 || r.chunkSize !== small[i - 1].chunkSize || r.usableSize !== small[i - 1].usableSize);
  return [...starts, ...rows.slice(small.length)];
}

export const chunkSizesTable: TableSpec<ChunkSizeRow> = {
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
