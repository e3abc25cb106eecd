// The mmap-threshold experiment in a terminal: the threshold, phase by
// phase, and which probes were mmapped, a strip of them per phase.
import { shortBytes } from '../../format';
import { TerminalView } from '../../presentation';
import { RIGHT, terminalTable } from '../../table-spec';
import { bracketOf, bracketText, MmapThresholdRow, ThresholdProbeRow } from './index';
import { phaseOrder, probeRows } from './table';

export const mmapThresholdTerminal: TerminalView<MmapThresholdRow, ThresholdProbeRow> = {
  table: 
  // The document table's choice (every probe) summed up phase by phase: a line a phase is what fits a terminal.
  (rows, probes) => {
    const phases = phaseOrder(probes).map((phase) => {
      const own = probes.filter((r) => r.phase === phase);
      const measured = own.filter((r) => r.role === 'probe' || r.role === 'sweep');
      return {
        phase,
        freed: own.filter((r) => r.role === 'source').map((r) => r.headerSize),
        probes: measured.length,
        mmapped: measured.filter((r) => r.mmapped).length,
        brk: measured.filter((r) => r.servedBy === 'brk').length,
        bracket: bracketText(bracketOf(rows, phase)),
      };
    });
    return terminalTable({
      title: `The threshold, phase by phase (${probes.length} probes; chunk sizes in bytes)`,
      columns: [
        { head: 'phase', cell: (p) => p.phase },
        { head: 'freed first', cell: (p) => p.freed.map((s) => shortBytes(s)).join(', ') || '—', ...RIGHT },
        { head: 'probes', cell: (p) => String(p.probes), ...RIGHT },
        { head: 'mmapped', cell: (p) => String(p.mmapped), ...RIGHT },
        { head: 'grew break', cell: (p) => String(p.brk), ...RIGHT },
        { head: 'threshold in', cell: (p) => p.bracket, wrap: true, colour: () => 'cyan' },
      ],
      rows: phases,
      omitted: rows.length - probes.length,
    });
  },
  chart: (result) => {
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
  },
};
