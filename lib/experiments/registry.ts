// Every experiment, in the order the tour tells them.
import { chunkSizes } from './chunk-sizes';
import { Experiment } from './types';

export const EXPERIMENTS: readonly Experiment[] = [chunkSizes as Experiment];
