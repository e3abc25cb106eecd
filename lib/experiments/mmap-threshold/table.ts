// The mmap-threshold table: every probe, numbered as on the chart, and its columns.
import { signedDelta, TableSpec } from '../../table-spec';
import { MmapThresholdRow, ThresholdPhase, ThresholdProbeRow } from './index';

/** The probes, in the order they ran (the rows that are not a trim). */
export function probeRows(rows: readonly MmapThresholdRow[]): ThresholdProbeRow[] {
  return rows.filter((r): r is ThresholdProbeRow => r.kind === 'probe');
}

/** The phases of the probes, in the order they ran. */
export const phaseOrder = (probes: ThresholdProbeRow[]): ThresholdPhase[] => [...new Set(probes.map((r) => r.phase))];

export const mmapThresholdTable: TableSpec<MmapThresholdRow> = {
  // Numbered as on the chart's x axis: the probes in the order they ran.
  select: (rows) => probeRows(rows).map((row, i) => ({ row, index: i })),
  selection: 'every probe (the trim run is in the findings)',
  columns: [
    { title: 'probe', numeric: true, value: (_, i) => i + 1 },
    { title: 'phase', value: (r) => r.phase },
    { title: 'role', value: (r) => (r as ThresholdProbeRow).role },
    { title: 'request (B)', numeric: true, value: (r) => (r as ThresholdProbeRow).request },
    { title: 'chunk size (B)', numeric: true, value: (r) => (r as ThresholdProbeRow).chunkSize },
    { title: 'header size (B)', numeric: true, value: (r) => (r as ThresholdProbeRow).headerSize },
    { title: 'served by', value: (r) => (r as ThresholdProbeRow).servedBy },
    { title: 'top before (B)', numeric: true, value: (r) => r.topBefore },
    { title: 'break moved (B)', numeric: true, value: (r) => signedDelta(r.breakBefore, r.breakAfter) },
  ],
};
