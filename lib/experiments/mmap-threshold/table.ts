// The mmap-threshold table: a line per phase, what it freed first, how its
// probes were served and the bracket they put the threshold in. The figure
// beside it draws every probe; a line a phase is what a terminal can show.
import { numbered, RIGHT, TableSpec } from '../../table-spec';
import { MmapThresholdRow, ThresholdPhase, ThresholdProbeRow } from './index';
import { bracketOf } from './prober';
import { bracketText } from './bracket';

/** The probes, in the order they ran (the rows that are not a trim). */
export function probeRows(rows: readonly MmapThresholdRow[]): ThresholdProbeRow[] {
  return rows.filter((r): r is ThresholdProbeRow => r.kind === 'probe');
}

/** The phases of the probes, in the order they ran. */
export const phaseOrder = (probes: ThresholdProbeRow[]): ThresholdPhase[] => [...new Set(probes.map((r) => r.phase))];

/** Only probes and sweeps measure the threshold; sources move it, eaters clear the way. */
const measures = (r: ThresholdProbeRow) => r.role === 'probe' || r.role === 'sweep';

interface PhaseLine {
  phase: ThresholdPhase;
  /** Header sizes of the chunks freed to move the threshold. */
  freed: number[];
  probes: ThresholdProbeRow[];
  bracket: string;
}

function byPhase(rows: readonly MmapThresholdRow[]): PhaseLine[] {
  const all = probeRows(rows);
  return phaseOrder(all).map((phase) => {
    const own = all.filter((r) => r.phase === phase);
    return {
      phase,
      freed: own.filter((r) => r.role === 'source').map((r) => r.headerSize),
      probes: own.filter(measures),
      bracket: bracketText(bracketOf(rows, phase)),
    };
  });
}

export const mmapThresholdTable: TableSpec<MmapThresholdRow, PhaseLine> = {
  title: 'The threshold, phase by phase',
  select: (rows) => numbered(byPhase(rows)),
  selection: 'a row per phase, from its probes; the trim run is in the findings',
  columns: [
    { title: 'phase', value: (p) => p.phase },
    { title: 'freed first (B)', short: 'freed first', value: (p) => p.freed.join(', ') || '—', ...RIGHT, drop: 4 },
    { title: 'probes', value: (p) => p.probes.length, ...RIGHT, drop: 3 },
    { title: 'mmapped', value: (p) => p.probes.filter((r) => r.mmapped).length, ...RIGHT, drop: 1 },
    { title: 'grew the break', short: 'grew break', value: (p) => p.probes.filter((r) => r.servedBy === 'brk').length, ...RIGHT, drop: 2 },
    { title: 'threshold in (chunk size, B)', short: 'threshold in', value: (p) => p.bracket, wrap: true, colour: () => 'cyan' },
  ],
};
