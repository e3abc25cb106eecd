// Is malloc'd memory resident before you touch it? What is measured and the
// rows: measure.ts; what is said about them: findings.ts.
import type { Experiment } from '../types';
import type { PagingRow } from './measure';

export type { HugePages, PagingBlock, PagingMoment, PagingRow } from './measure';

export const paging: Experiment<PagingRow, 'paging'> = {
  name: 'paging',
  question: "Is malloc'd memory resident before you touch it?",
  // Frees two 8 MiB mmapped chunks, which raises the dynamic mmap threshold.
  isolatedByDefault: true,
  async run() {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    const measured = measure();
    return { rows: measured.rows, ...describeRows(measured) };
  },
};
