// The free experiment in a terminal: the steps that tell the story, and the break over them.
import { hex, shortBytes, signedBytes } from '../../format';
import { TerminalView } from '../../presentation';
import { phaseRuns } from '../../phases';
import { countText, firstRows, RIGHT, terminalTable } from '../../table-spec';
import { FreeRow } from './index';
import { breakOf } from './table';

export const freeTerminal: TerminalView<FreeRow> = {
  table: (rows) => {
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
    return terminalTable({
      title: `The steps that tell the story (${telling.length} of ${rows.length})`,
      columns: [
        { head: 'phase', cell: (r) => r.phase },
        { head: 'step', cell: (r) => (r.kind === 'free-run' ? `free block ${r.block}` : [r.op, r.role, r.request === undefined ? '' : `(${shortBytes(r.request)})`, r.pad === undefined ? '' : `pad ${shortBytes(r.pad)}`].filter(Boolean).join(' ')), wrap: true },
        { head: 'break', cell: (r) => hex(breakOf(r)), ...RIGHT },
        { head: 'moved', cell: (r) => signedBytes(moved.get(r) ?? 0), ...RIGHT },
        { head: 'top', cell: (r) => String(r.kind === 'step' ? r.top : r.topAfter), ...RIGHT },
        { head: 'rss pages', cell: (r) => (r.kind === 'step' ? countText(r.rssPages) : ''), ...RIGHT },
      ],
      rows: shown.rows,
      cuts: shown.cuts,
      omitted: rows.length - shown.rows.length,
    });
  },
  chart: (result, width) => {
    const rows = result.rows;
    if (rows.length === 0) return undefined;
    const breaks = rows.map(breakOf);
    const low = breaks.reduce((a, b) => (b < a ? b : a));
    const marks = phaseRuns(rows).map((p) => ({ x: p.from, label: p.phase }));
    return {
      kind: 'steps',
      title: `The program break above ${hex(low)} over the ${rows.length} steps`,
      xs: rows.map((_, i) => i),
      ys: breaks.map((b) => Number(b - low)),
      height: 10,
      xLabel: (x) => `step ${x + 1}`,
      yLabel: (y) => `+${shortBytes(Math.round(y))}`,
      xName: 'step',
      colour: 'cyan',
      marks,
    };
  },
};
