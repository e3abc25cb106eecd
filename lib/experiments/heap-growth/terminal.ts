// The heap-growth experiment's terminal chart: the break as mallocs pile
// up. Its table is table.ts, the one every view draws.
import type { TerminalChart } from '../../chart-model';
import { hex, shortBytes } from '../../format';
import { ResultData } from '../../result-data';
import { HeapGrowthRow } from './index';

export function heapGrowthTerminalChart(result: ResultData<HeapGrowthRow>): TerminalChart | undefined {
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
}
