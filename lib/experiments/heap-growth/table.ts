// The heap-growth table: which rows it shows and its columns.
import { signedDelta, TableSpec, withIndex } from '../../table-spec';
import { breakSteps, HeapGrowthRow } from './index';

/** The rows the table beside shows: the first malloc, every row that moved the break, the last free. */
export function heapGrowthTableRows(rows: readonly HeapGrowthRow[]): HeapGrowthRow[] {
  if (rows.length === 0) return [];
  const moved = new Set(breakSteps(rows).map((s) => s.row));
  return rows.filter((_, i) => i === 0 || i === rows.length - 1 || moved.has(i));
}

export const heapGrowthTable: TableSpec<HeapGrowthRow> = {
  select: (rows) => withIndex(rows, heapGrowthTableRows(rows)),
  selection: 'the first malloc, every step that moved the break, the last free',
  columns: [
    { title: 'step', value: (r) => `${r.op} ${r.n}` },
    { title: 'requested, live (B)', numeric: true, value: (r) => r.requested },
    { title: 'break before', value: (r) => r.breakBefore },
    { title: 'break after', value: (r) => r.breakAfter },
    { title: 'break moved (B)', numeric: true, value: (r) => signedDelta(r.breakBefore, r.breakAfter) },
    { title: 'top before (B)', numeric: true, value: (r) => r.topBefore },
    { title: 'top after (B)', numeric: true, value: (r) => r.topAfter },
  ],
};
