// The chunk-sizes experiment's terminal chart: the staircase. Its table is
// table.ts, the one every view draws.
import type { TerminalChart } from '../../chart-model';
import { ResultData } from '../../result-data';
import { ChunkSizeRow } from './index';
import { SMALL, stairs } from './measure';

export function chunkSizesTerminalChart(result: ResultData<ChunkSizeRow>, width: number): TerminalChart | undefined {
  // The first dozen steps, one row each: enough to see the staircase, few enough to read every size.
  const small = result.rows.filter((r) => r.request <= SMALL && !r.header.isMmapped);
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
}
