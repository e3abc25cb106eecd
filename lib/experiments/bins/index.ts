// Where does a freed chunk go, and how does it move between the bins? What
// is measured and the rows: measure.ts (one frame per step: frame.ts); what
// is said about them: findings.ts.
import { Experiment } from '../types';
import { describeRows } from './findings';
import { BinsRow, measure } from './measure';

export type { BinKind, BinLine, BinsRow, ChunkPlace, FrameParams, BinsStage } from './measure';
export { nameRange } from './measure';
export { predictedFree } from './findings';

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
    return describeRows(measure(context.isolated));
  },
};
