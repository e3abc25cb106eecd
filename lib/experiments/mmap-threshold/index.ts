// When does malloc switch to mmap, and how does the threshold move? What is
// measured: measure.ts (the phases) and prober.ts (the probes and their
// rows); what is said about them: findings.ts.
import { tunable } from '../tunables';
import { Experiment } from '../types';
import { describeRows } from './findings';
import { measure } from './measure';
import { MmapThresholdRow } from './prober';

export type { Bracket } from './bracket';
export { bracketText, holds } from './bracket';
export type { MmapThresholdRow, ProbeRole, ServedBy, ThresholdPhase, ThresholdProbeRow, ThresholdTrimRow } from './prober';
export { bracketOf } from './prober';

export const mmapThreshold: Experiment<MmapThresholdRow, 'mmap-threshold'> = {
  name: 'mmap-threshold',
  question: 'When does malloc switch to mmap, and how does the threshold move?',
  // It frees mmapped chunks (raising the threshold for good) and calls mallopt.
  isolatedByDefault: true,
  run(context) {
    const { rows, atStart, page, trimMissed } = measure(context);
    const setting = { atStart, tunableThreshold: tunable('glibc.malloc.mmap_threshold'), page, isolated: context.isolated, trimMissed };
    return { rows, ...describeRows(rows, setting) };
  },
};
