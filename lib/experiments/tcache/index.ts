// What does the per-thread cache hold, and when do fastbins take over? What
// is measured and the rows: measure.ts; what is said about them: findings.ts.
import type { Experiment } from '../types';
import type { TcacheRow } from './measure';

export type { FreeDestination, MallinfoChange, MallocSource, TcacheRow, TcacheStep } from './measure';

export const tcache: Experiment<TcacheRow, 'tcache'> = {
  name: 'tcache',
  question: 'What does the per-thread cache hold, and when do fastbins take over?',
  // It needs a heap nobody touched: in a long-running process the arena is
  // full of small free fragments, malloc hands many of them out whole (16
  // bytes bigger than asked), and those land in another tcache bin, so too
  // few test chunks share one bin to see it fill up. In-process runs still
  // work: such chunks are left out of the count and reported.
  isolatedByDefault: true,
  async run() {
    const [{ measure, testChunks }, { describeRows }, { layoutHere, mallocPar }] = await Promise.all([import('./measure'), import('./findings'), import('../measure')]);
    // Read before the run to size it, and again after (below) for what the findings say glibc used.
    const { rows, missed } = measure(testChunks(Number(mallocPar().tcacheCount)));
    // What glibc used, whoever set it: read from mp_ after the run.
    const layout = layoutHere();
    return { rows, ...describeRows(rows, Number(mallocPar().tcacheCount), missed, layout !== undefined && !layout.fastbins ? layout.version : undefined) };
  },
};
