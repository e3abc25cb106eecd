// The bins table: a line per step, what it did, where its chunks went and
// the bins holding test chunks after it, as the step's copy decoded them.
import { hex } from '../../format';
import { allRows, RIGHT, TableSpec } from '../../table-spec';
import { BinLine, BinsRow, ChunkPlace } from './index';
import { nameRange } from './measure';

const KIND: Record<BinLine['kind'], string> = { tcache: 'tcache', fastbin: 'fast', unsorted: 'unsorted', smallbin: 'small', largebin: 'large' };

function place(c: ChunkPlace): string {
  return c.place === 'merged' ? `in ${c.within} (${hex(c.size)})` : `${c.place}${c.bin === undefined ? '' : ` ${c.bin}`}`;
}

/** `s1–s7→tcache 10`: the step's chunks, those that went to one place together. */
function went(r: BinsRow): string {
  const groups: { names: string[]; to: string }[] = [];
  for (const c of r.places) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last.to === place(c)) last.names.push(c.name);
    else groups.push({ names: [c.name], to: place(c) });
  }
  return groups.map((g) => `${nameRange(g.names)}→${g.to}`).join(', ');
}

/** The bins holding test chunks, as `tcache 1: f7 f6 …`; other chunks counted. */
function binsOf(row: BinsRow): string {
  return row.bins.filter((b) => b.ours.some((n) => n !== 'probe'))
    .map((b) => `${KIND[b.kind]}${b.kind === 'unsorted' ? '' : ` ${b.index}`}: ${b.ours.join(' ')}${b.others > 0 ? ` +${b.others}` : ''}`)
    .join('; ');
}

export const binsTable: TableSpec<BinsRow> = {
  title: 'Each step, where its chunks went, and the bins holding test chunks after it (decoded from a copy made right after the step)',
  select: allRows,
  selection: 'every step',
  columns: [
    { title: 'step', value: (r) => r.step, ...RIGHT },
    { title: 'did', value: (r) => r.action, wrap: true },
    { title: 'went', value: (r) => (r.stage === 'start' ? '' : went(r)), wrap: true },
    { title: 'bins after', value: binsOf, wrap: true },
    { title: 'top (B)', short: 'top', value: (r) => r.top.size, ...RIGHT, drop: 1 },
  ],
};
