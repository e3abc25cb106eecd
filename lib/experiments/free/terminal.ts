// The free experiment's terminal chart: the break over the steps. Its table
// is table.ts, the one every view draws.
import type { TerminalChart } from '../../chart-model';
import { hex, shortBytes } from '../../format';
import { phaseRuns } from '../../phases';
import { ResultData } from '../../result-data';
import { FreeRow } from './index';
import { breakOf } from './table';

export function freeTerminalChart(result: ResultData<FreeRow>): TerminalChart | undefined {
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
}
