// Where is a heap object when another thread allocates it? What is measured
// and the rows: measure.ts; what is said about them: findings.ts.
import type { Experiment } from '../types';
import type { ArenaRow } from './measure';

export type { ArenaChunkRow, ArenaHeapRow, ArenaReportRow, ArenaRow, ArenaThread, HeapInfoRow } from './measure';

export const arenas: Experiment<ArenaRow, 'arenas'> = {
  name: 'arenas',
  question: 'Where is a heap object when another thread allocates it?',
  // It starts a thread, and a thread's arena stays in the process forever.
  isolatedByDefault: true,
  async run() {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    const rows = await measure();
    return { rows, ...describeRows(rows) };
  },
};
