// How does the heap grow? What is measured and the rows: measure.ts; what is
// said about them: findings.ts.
import { Experiment, ExperimentContext } from '../types';
import { describeRows } from './findings';
import { HeapGrowthRow, measure } from './measure';

export type { BreakStep, HeapGrowthRow } from './measure';
export { breakSteps, COUNT, SIZE } from './measure';

export const heapGrowth: Experiment<HeapGrowthRow, 'heap-growth'> = {
  name: 'heap-growth',
  question: 'How does the heap grow?',
  // Wants a heap nobody else has grown, trimmed or fragmented, and a trim threshold no earlier free has raised.
  isolatedByDefault: true,
  run(context: ExperimentContext) {
    const measured = measure();
    return { rows: measured.rows, ...describeRows(measured, context.isolated) };
  },
};
