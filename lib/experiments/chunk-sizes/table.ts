// The chunk-sizes table: a line per run of consecutive requests that got
// the same chunk size, so the staircase reads down the table and each
// larger probe, alone in its run, gets a line of its own.
import { chunkFlags } from '../../chunk';
import { span } from '../../format';
import { byRank, numbered, RIGHT, TableSpec } from '../../table-spec';
import { ChunkSizeRow } from './index';
import { SMALL, stairs } from './measure';

/** The rows the staircase draws: every request malloc served from the heap byte by byte (the probes beyond are mmapped or far off). */
export function staircaseRows(rows: readonly ChunkSizeRow[]): ChunkSizeRow[] {
  const out: ChunkSizeRow[] = [];
  for (const r of rows) {
    if (r.request !== out.length || r.header.isMmapped) break;
    out.push(r);
  }
  return out;
}

/** A run of requests with one chunk size; `row` is its first request's. */
export interface Run {
  from: number;
  to: number;
  row: ChunkSizeRow;
}

export function runs(rows: ChunkSizeRow[]): Run[] {
  const byRequest = new Map(rows.map((r) => [r.request, r]));
  return stairs(rows).map((s) => ({ from: s.from, to: s.to, row: byRequest.get(s.from)! }));
}

/**
 * A run worth keeping when there is room for few: a chunk other than the
 * rule's, an mmapped one, or a probe beyond the byte-by-byte requests.
 */
const odd = (s: Run) => s.row.chunkSize !== s.row.ruleSize || s.row.header.isMmapped || (s.from === s.to && s.from > SMALL);

export const chunkSizesTable: TableSpec<ChunkSizeRow, Run> = {
  title: 'Chunk size per request, runs of equal chunk size on one line',
  select: (rows) => numbered(runs([...rows])),
  selection: 'a row per run of consecutive requests that got the same chunk size',
  // Where a view has room for few, the odd runs first, then the staircase from its foot.
  keep: byRank((s) => (odd(s) ? 0 : 1)),
  columns: [
    { title: 'requests (B)', short: 'requests', value: (s) => span(s.from, s.to), ...RIGHT },
    { title: 'chunk (B)', short: 'chunk', value: (s) => s.row.chunkSize, ...RIGHT },
    { title: 'usable (B)', short: 'usable', value: (s) => s.row.usableSize, ...RIGHT },
    { title: 'slack (B)', short: 'slack', value: (s) => span(s.row.usableSize - s.to, s.row.usableSize - s.from), ...RIGHT, drop: 3 },
    {
      title: 'rule says (B)', short: 'rule says', value: (s) => s.row.ruleSize, ...RIGHT,
      colour: (s) => (s.row.ruleSize !== s.row.chunkSize ? 'yellow' : undefined),
    },
    { title: 'flags', value: (s) => chunkFlags(s.row.header) },
    { title: 'address', value: (s) => s.row.address, ...RIGHT, drop: 2 },
    { title: 'break moved (B)', short: 'break moved', value: (s) => s.row.breakMoved, ...RIGHT, drop: 1 },
  ],
};
