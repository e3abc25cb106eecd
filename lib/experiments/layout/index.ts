// Where do things live in a process? What is measured and the rows:
// measure.ts; what is said about them: findings.ts.
import type { Experiment } from '../types';
import type { LayoutRow } from './measure';

export type { LayoutBoundary, LayoutProbe, LayoutRow, LayoutSegment, PlacedRegion } from './measure';

export const layout: Experiment<LayoutRow, 'layout'> = {
  name: 'layout',
  question: 'Where do things live in a process?',
  // The 1 MiB probe is mmapped and freed, which raises the dynamic mmap threshold.
  isolatedByDefault: true,
  async run() {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    const snapshot = measure();
    return { rows: snapshot.rows, ...describeRows(snapshot) };
  },
};
