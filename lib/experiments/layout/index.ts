// Where do things live in a process? What is measured and the rows:
// measure.ts; what is said about them: findings.ts.
import { Experiment } from '../types';
import { describeRows } from './findings';
import { LayoutRow, measure } from './measure';

export type { LayoutBoundary, LayoutProbe, LayoutRow, LayoutSegment, PlacedRegion } from './measure';

export const layout: Experiment<LayoutRow, 'layout'> = {
  name: 'layout',
  question: 'Where do things live in a process?',
  // The 1 MiB probe is mmapped and freed, which raises the dynamic mmap threshold.
  isolatedByDefault: true,
  run() {
    const snapshot = measure();
    return { rows: snapshot.rows, ...describeRows(snapshot) };
  },
};
