// When does malloc switch to mmap, and how does the threshold move? What is
// measured: measure.ts (the phases) and prober.ts (the probes and their
// rows); what is said about them: findings.ts.
import { tunable } from '../tunables';
import type { Experiment } from '../types';
import type { MmapThresholdRow } from './prober';

export type { Bracket } from './bracket';
export type { MmapThresholdRow, ProbeRole, ServedBy, ThresholdPhase, ThresholdProbeRow, ThresholdTrimRow } from './prober';

export const mmapThreshold: Experiment<MmapThresholdRow, 'mmap-threshold'> = {
  name: 'mmap-threshold',
  question: 'When does malloc switch to mmap, and how does the threshold move?',
  // It frees mmapped chunks (raising the threshold for good) and calls mallopt.
  isolatedByDefault: true,
  async run(context) {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    const { rows, atStart, page, trimMissed } = measure(context);
    const setting = { atStart, tunableThreshold: tunable('glibc.malloc.mmap_threshold'), page, isolated: context.isolated, trimMissed };
    return { rows, ...describeRows(rows, setting) };
  },
};
