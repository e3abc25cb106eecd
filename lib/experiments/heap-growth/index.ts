// How does the heap grow? What is measured and the rows: measure.ts; what is
// said about them: findings.ts.
import type { Experiment, ExperimentContext } from '../types';
import type { HeapGrowthRow } from './measure';

export type { BreakStep, HeapGrowthRow } from './measure';

export const heapGrowth: Experiment<HeapGrowthRow, 'heap-growth'> = {
  name: 'heap-growth',
  question: 'How does the heap grow?',
  // Wants a heap nobody else has grown, trimmed or fragmented, and a trim threshold no earlier free has raised.
  isolatedByDefault: true,
  async run(context: ExperimentContext) {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    const measured = measure();
    return { rows: measured.rows, ...describeRows(measured, context.isolated) };
  },
};
