// The heap-growth table: every step that moved the break, and by how much
// more than the top chunk was missing.
import { RIGHT, signed, TableSpec } from '../../table-spec';
import { BreakStep, HeapGrowthRow } from './index';
import { breakSteps } from './measure';

/** A move of the break, with the top chunk around its step. */
type Move = BreakStep & Pick<HeapGrowthRow, 'topBefore' | 'topAfter'>;

export const heapGrowthTable: TableSpec<HeapGrowthRow, Move> = {
  title: 'Every move of the break',
  select: (rows) => breakSteps(rows).map((s) => ({ line: { ...s, topBefore: rows[s.row].topBefore, topAfter: rows[s.row].topAfter }, index: s.row })),
  selection: 'every step that moved the break',
  columns: [
    { title: 'step', value: (s) => `${s.op} #${s.n}` },
    { title: 'requested, still live (B)', short: 'live requested', value: (s) => s.requested, ...RIGHT, drop: 6 },
    { title: 'break before', value: (s) => s.from, ...RIGHT, drop: 1 },
    { title: 'break after', value: (s) => s.to, ...RIGHT },
    { title: 'break moved (B)', short: 'moved', value: (s) => signed(s.size), ...RIGHT, colour: (s) => (s.size < 0 ? 'yellow' : 'green') },
    { title: 'top chunk before (B)', short: 'top before', value: (s) => s.topBefore, ...RIGHT, drop: 3 },
    { title: 'top chunk missing (B)', short: 'missing', value: (s) => s.missing, ...RIGHT, drop: 5 },
    { title: 'beyond the need (B)', short: 'beyond need', value: (s) => s.extra, ...RIGHT, drop: 4 },
    { title: 'top chunk after (B)', short: 'top after', value: (s) => s.topAfter, ...RIGHT, drop: 2 },
  ],
};
