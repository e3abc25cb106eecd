// The chunk-sizes experiment in a terminal: runs of equal chunk size, and the staircase.
import { chunkFlags } from '../../chunk';
import { hex, span } from '../../format';
import { TerminalView } from '../../presentation';
import { RIGHT, TERMINAL_ROWS, terminalTable } from '../../table-spec';
import { ChunkSizeRow, stairs } from './index';

interface Stair {
  from: number;
  to: number;
  row: ChunkSizeRow;
  count: number;
}

export const chunkSizesTerminal: TerminalView<ChunkSizeRow> = {
  table: (rows) => {
    // Runs of requests with the same chunk size; a run broken by an odd row
    // (a free chunk handed out whole) shows that row on its own.
    const byRequest = new Map(rows.map((r) => [r.request, r]));
    const runs: Stair[] = stairs(rows).map((s) => ({ from: s.from, to: s.to, row: byRequest.get(s.from)!, count: s.to - s.from + 1 }));
    const odd = runs.filter((s) => s.row.chunkSize !== s.row.ruleSize || s.row.header.isMmapped || s.count === 1 && s.from > 1024);
    const regular = runs.filter((s) => !odd.includes(s));
    const shown = [...regular.slice(0, Math.max(4, TERMINAL_ROWS - odd.length)), ...odd].sort((a, b) => a.from - b.from);
    const covered = shown.reduce((n, s) => n + s.count, 0);
    // A ⋮ where runs that were measured are left out between two shown.
    const cuts = shown.map((_, i) => i).filter((i) => i > 0 && runs.indexOf(shown[i]) !== runs.indexOf(shown[i - 1]) + 1);
    return terminalTable({
      title: `Chunk size per request (${rows.length} requests, runs of equal chunk size on one line)`,
      columns: [
        { head: 'requests', cell: (s) => span(s.from, s.to), ...RIGHT },
        { head: 'chunk', cell: (s) => String(s.row.chunkSize), ...RIGHT },
        { head: 'usable', cell: (s) => String(s.row.usableSize), ...RIGHT },
        { head: 'rule says', cell: (s) => String(s.row.ruleSize), ...RIGHT, colour: (s) => (s.row.ruleSize !== s.row.chunkSize ? 'yellow' : undefined) },
        { head: 'flags', cell: (s) => chunkFlags(s.row.header) },
        { head: 'address', cell: (s) => hex(s.row.address), ...RIGHT },
      ],
      rows: shown,
      cuts,
      omitted: rows.length - covered,
    });
  },
  chart: (result, width) => {
    // The first dozen steps, one row each: enough to see the staircase, few enough to read every size.
    const small = result.rows.filter((r) => r.request <= 1024 && !r.header.isMmapped);
    const steps = stairs(small).slice(0, 12);
    if (steps.length === 0) return undefined;
    const last = steps[steps.length - 1].to;
    const shown = small.filter((r) => r.request <= last);
    const labelWidth = String(steps[steps.length - 1].chunkSize).length;
    const perColumn = Math.max(1, Math.ceil((last + 1) / (width - labelWidth - 2)));
    return {
      kind: 'steps',
      title: `The staircase: chunk size for malloc(0) … malloc(${last}), in bytes`,
      xs: shown.map((r) => r.request),
      ys: shown.map((r) => r.chunkSize),
      // One row per 16-byte chunk size (MALLOC_ALIGNMENT), so each step is one row up.
      height: (Math.max(...shown.map((r) => r.chunkSize)) - Math.min(...shown.map((r) => r.chunkSize))) / 16 + 1,
      labelEveryRow: true,
      xLabel: String,
      yLabel: (y) => String(Math.round(y)),
      xName: `request (bytes, ${perColumn} a column)`,
      colour: 'green',
      perColumn,
    };
  },
};
