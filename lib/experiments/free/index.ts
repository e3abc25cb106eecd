// Does free give memory back to the kernel? What is measured and the rows:
// measure.ts; what is said about them: findings.ts.
import type { Experiment } from '../types';
import type { FreeRow } from './measure';

export type { FreePhase, FreeRow, FreeRunStepRow, FreeStepRow } from './measure';

export const freeExperiment: Experiment<FreeRow, 'free'> = {
  name: 'free',
  question: 'Does free give memory back to the kernel?',
  // It needs a heap whose top and bins this run shapes, and it frees an mmapped chunk.
  isolatedByDefault: true,
  async run() {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    const measured = measure();
    return { rows: measured.rows, ...describeRows(measured) };
  },
};
