// Where does a freed chunk go, and how does it move between the bins? What
// is measured and the rows: measure.ts (one frame per step: frame.ts); what
// is said about them: findings.ts.
import type { Experiment } from '../types';
import type { BinsRow } from './measure';

export type { BinKind, BinLine, BinsRow, ChunkPlace, FrameParams, BinsStage } from './measure';

export const binsExperiment: Experiment<BinsRow, 'bins'> = {
  name: 'bins',
  question: 'Where does a freed chunk go, and how does it move between the bins?',
  // It needs a heap small enough to copy once per step, bins it can empty
  // with fillers and a top it can shrink below the trim threshold.
  isolatedByDefault: true,
  // Its child copies and decodes the allocator 14 times: 0.5 s here,
  // against 0.1–0.3 s for each of the others.
  startFirst: true,
  async run(context) {
    const [{ measure }, { describeRows }] = await Promise.all([import('./measure'), import('./findings')]);
    return describeRows(measure(context.isolated));
  },
};
