// The free table: which steps it shows (those the chart labels) and its columns.
import { TableSpec, withIndex } from '../../table-spec';
import { FreeRow } from './index';

/** Where the program break stood after a row. */
export function breakOf(r: FreeRow): bigint {
  return r.kind === 'step' ? r.programBreak : r.breakAfter;
}

/** The steps the chart labels (and the table beside shows): phase edges, break moves, trims and the RSS marks. */
export function freeTableRows(rows: readonly FreeRow[]): FreeRow[] {
  return rows.filter((r, i) => {
    const prev = rows[i - 1];
    const next = rows[i + 1];
    return prev === undefined || next === undefined || prev.phase !== r.phase || next.phase !== r.phase ||
      breakOf(prev) !== breakOf(r) || isRssMark(rows, i) || (r.kind === 'step' && r.op !== 'malloc' && r.role !== 'block' && r.role !== 'drain');
  });
}

/** malloc-trim rows where the RSS line is labelled: the trims and the last step before each change of op. */
export function isRssMark(rows: readonly FreeRow[], i: number): boolean {
  const r = rows[i];
  if (r.kind !== 'step' || r.rssPages === undefined) return false;
  const next = rows[i + 1];
  return r.op === 'trim' || next === undefined || next.kind !== 'step' || next.op !== r.op || next.phase !== r.phase;
}

export const freeTable: TableSpec<FreeRow> = {
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
