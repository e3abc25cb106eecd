// malloc(n): how many bytes do you really get? What is measured and the
// rows: measure.ts; what is said about them: findings.ts.
import type { Experiment } from '../types';
import type { ChunkSizeRow } from './measure';

export type { ChunkSizeRow } from './measure';

export const chunkSizes: Experiment<ChunkSizeRow, 'chunk-sizes'> = {
  name: 'chunk-sizes',
  question: 'malloc(n): how many bytes do you really get?',
  // The large probes are mmapped and freed, which raises the dynamic mmap threshold.
  isolatedByDefault: true,
  async run() {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    const rows = measure();
    return { rows, ...describeRows(rows) };
  },
};
