// The free table: the steps that tell the story (starts, probes, trims, the
// mmapped chunk, every free that moved the break) and the steps the chart
// marks, numbered as on the chart; where there is room for few, the story.
import { shortBytes } from '../../format';
import { byRank, RIGHT, signed, TableSpec } from '../../table-spec';
import { FreeRow } from './index';

/** Where the program break stood after a row. */
export function breakOf(r: FreeRow): bigint {
  return r.kind === 'step' ? r.programBreak : r.breakAfter;
}

/** malloc-trim rows where the RSS line is labelled: the trims and the last step before each change of op. */
export function isRssMark(rows: readonly FreeRow[], i: number): boolean {
  const r = rows[i];
  if (r.kind !== 'step' || r.rssPages === undefined) return false;
  const next = rows[i + 1];
  return r.op === 'trim' || next === undefined || next.kind !== 'step' || next.op !== r.op || next.phase !== r.phase;
}

/** Where the break stood before a row: the row before's, or the phase's own start. */
function breakBefore(rows: readonly FreeRow[], i: number): bigint {
  const r = rows[i];
  if (r.kind === 'free-run') return r.breakBefore;
  return rows[i - 1]?.phase === r.phase ? breakOf(rows[i - 1]) : r.programBreak;
}

/** A free of the frees into the top that gave memory back. */
function trimmed(r: FreeRow | undefined, phase: string): boolean {
  return r?.kind === 'free-run' && r.phase === phase && r.returned !== 0;
}

/**
 * The steps a reader follows: starts, probes, trims, the mmapped chunk, and
 * every free that moved the break; of frees into the top that each gave
 * memory back one after another (all of them, once the top stays above the
 * trim threshold), the first and the last.
 */
function tells(rows: readonly FreeRow[], i: number): boolean {
  const r = rows[i];
  if (r.kind === 'free-run') return trimmed(r, r.phase) && !(trimmed(rows[i - 1], r.phase) && trimmed(rows[i + 1], r.phase));
  return r.op === 'start' || r.op === 'trim' || ['probe', 'again', 'chunk'].includes(r.role) || (r.op === 'free' && breakOf(r) !== breakBefore(rows, i));
}

/** The first or last step of a case, an RSS label or a change in the bytes in mmapped chunks: what the chart labels. */
function labelled(rows: readonly FreeRow[], i: number): boolean {
  const r = rows[i];
  const prev = rows[i - 1];
  return prev?.phase !== r.phase || rows[i + 1]?.phase !== r.phase || isRssMark(rows, i) ||
    (r.kind === 'step' && prev?.kind === 'step' && prev.phase === r.phase && prev.mmappedBytes !== r.mmappedBytes);
}

/** How much a row tells, where there is room for few: the story, then what the chart labels, then every other move of the break (a dot on the chart). */
function rank(rows: readonly FreeRow[], i: number): number | undefined {
  if (tells(rows, i)) return 0;
  if (labelled(rows, i)) return 1;
  return breakOf(rows[i]) !== breakBefore(rows, i) ? 2 : undefined;
}

interface Step {
  row: FreeRow;
  moved: bigint;
  rank: number;
}

export const freeTable: TableSpec<FreeRow, Step> = {
  title: 'The steps that tell the story',
  select: (rows) => rows.flatMap((row, index) => {
    const r = rank(rows, index);
    return r === undefined ? [] : [{ line: { row, moved: breakOf(row) - breakBefore(rows, index), rank: r }, index }];
  }),
  selection: "each case's first and last step, the probes, trims and mmapped chunk, every step that moved the break, and the steps the chart labels",
  keep: byRank((s) => s.rank),
  columns: [
    { title: 'step', value: (_, i) => i + 1, ...RIGHT, drop: 4 },
    { title: 'case', value: (s) => s.row.phase },
    {
      title: 'op', wrap: true,
      value: ({ row: r }) => (r.kind === 'free-run' ? `free block ${r.block}`
        : [r.op, r.role, r.request === undefined ? '' : `(${shortBytes(r.request)})`, r.pad === undefined ? '' : `pad ${shortBytes(r.pad)}`].filter(Boolean).join(' ')),
    },
    { title: 'chunk (B)', short: 'chunk', value: (s) => s.row.chunkSize, ...RIGHT, drop: 2 },
    { title: 'break', value: (s) => breakOf(s.row), ...RIGHT },
    { title: 'break moved (B)', short: 'moved', value: (s) => signed(s.moved), ...RIGHT },
    { title: 'top chunk (B)', short: 'top', value: (s) => (s.row.kind === 'step' ? s.row.top : s.row.topAfter), ...RIGHT },
    { title: 'RSS (pages)', short: 'RSS pages', value: (s) => (s.row.kind === 'step' ? s.row.rssPages : undefined), ...RIGHT },
    { title: 'in mmapped chunks (B)', short: 'mmapped', value: (s) => (s.row.kind === 'step' ? s.row.mmappedBytes : undefined), ...RIGHT, drop: 1 },
    { title: 'trim returned', short: 'trimmed', value: (s) => (s.row.kind === 'step' ? s.row.released : s.row.returned), drop: 3 },
  ],
};
