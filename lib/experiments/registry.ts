// Every experiment, in the order the tour tells them: the seed article's
// questions first (where things live, kernel calls, malloc(10), where a
// block is, free), then what lies beyond it.
import { arenas } from './arenas';
import { chunkSizes } from './chunk-sizes';
import { freeExperiment } from './free';
import { heapGrowth } from './heap-growth';
import { kernelCalls } from './kernel-calls';
import { layout } from './layout';
import { mmapThreshold } from './mmap-threshold';
import { paging } from './paging';
import { tcache } from './tcache';
import { Experiment } from './types';

export const EXPERIMENTS: readonly Experiment[] = [
  layout,
  kernelCalls,
  chunkSizes,
  heapGrowth,
  mmapThreshold,
  freeExperiment,
  tcache,
  arenas,
  paging,
] as Experiment[];
