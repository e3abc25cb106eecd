// The heap-growth experiment in a terminal: every move of the break, and the break as mallocs pile up.
import { hex, shortBytes, signedBytes } from '../../format';
import { TerminalView } from '../../presentation';
import { countText, firstRows, RIGHT, terminalTable } from '../../table-spec';
import { breakSteps, HeapGrowthRow } from './index';

export const heapGrowthTerminal: TerminalView<HeapGrowthRow> = {
  table: (rows) => {
    const steps = breakSteps(rows);
    const shown = firstRows(steps);
    return terminalTable({
      title: `Every move of the break (${steps.length} of ${rows.length} steps moved it)`,
      columns: [
        { head: 'step', cell: (s) => `${s.op} #${s.n}` },
        { head: 'live requested', cell: (s) => shortBytes(s.requested), ...RIGHT },
        { head: 'break after', cell: (s) => hex(s.to), ...RIGHT },
        { head: 'moved', cell: (s) => signedBytes(s.size), ...RIGHT, colour: (s) => (s.size < 0 ? 'yellow' : 'green') },
        { head: 'missing', cell: (s) => countText(s.missing), ...RIGHT },
        { head: 'beyond need', cell: (s) => countText(s.extra), ...RIGHT },
      ],
      rows: shown.rows,
      cuts: shown.cuts,
      omitted: rows.length - shown.rows.length,
    });
  },
  chart: (result, width) => {
    const mallocs = result.rows.filter((r) => r.op === 'malloc');
    if (mallocs.length === 0) return undefined;
    const start = mallocs[0].breakBefore;
    return {
      kind: 'steps',
      title: `The break above ${hex(start)} as ${mallocs.length} mallocs of ${mallocs[0].size} bytes pile up`,
      xs: [0, ...mallocs.map((r) => r.requested)],
      ys: [0, ...mallocs.map((r) => Number(r.breakAfter - start))],
      height: 10,
      xLabel: (x) => shortBytes(x),
      yLabel: (y) => `+${shortBytes(Math.round(y))}`,
      xName: 'bytes requested',
      colour: 'green',
    };
  },
};
