// The mmap-threshold experiment's terminal chart: which probes were
// mmapped, a strip of them per phase. Its table is table.ts, the one every
// view draws.
import type { TerminalChart } from '../../chart-model';
import { shortBytes } from '../../format';
import { ResultData } from '../../result-data';
import { MmapThresholdRow } from './index';
import { phaseOrder, probeRows } from './table';

export function mmapThresholdTerminalChart(result: ResultData<MmapThresholdRow>): TerminalChart | undefined {
  const all = probeRows(result.rows);
  const probes = all.filter((r) => r.role === 'probe' || r.role === 'sweep');
  if (probes.length === 0) return undefined;
  const sizes = probes.map((r) => r.chunkSize);
  // Ticks at the powers of two in the range, so a reader can place a size.
  const ticks = [];
  const [lo, hi] = [Math.ceil(Math.log2(Math.min(...sizes))), Math.floor(Math.log2(Math.max(...sizes)))];
  for (let p = lo; p <= hi; p++) ticks.push({ x: 2 ** p, label: shortBytes(2 ** p) });
  return {
    kind: 'strips',
    title: 'Which probes were mmapped, by chunk size (log scale)',
    rows: phaseOrder(all).map((phase) => ({
      name: phase,
      points: probes.filter((r) => r.phase === phase).map((r) => ({ x: r.chunkSize, glyph: r.mmapped ? 'mmapped' : 'heap' })),
    })),
    glyphs: { mmapped: { symbol: '●', colour: 'red', label: 'mmapped' }, heap: { symbol: '○', colour: 'green', label: 'from the heap' } },
    clash: { symbol: '◐', colour: 'yellow', label: 'both in one column' },
    empty: { symbol: '·', colour: 'dim' },
    ticks,
  };
}
