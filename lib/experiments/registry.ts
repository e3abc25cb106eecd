// Every experiment, in the order the tour tells them: the seed article's
// questions first (where things live, kernel calls, malloc(10), where a
// block is, free), then what lies beyond it. Listing an experiment here is
// all it takes to give it a name run() accepts and a row type run() returns.
// An experiment's index holds its name, question and choices, and loads
// its measuring and its findings as it runs: the registry loads in ~8 ms
// (64 ms when it loaded all ten's code and the allocator's decoders), so
// that a tour starts its children first.
import { arenas } from './arenas';
import { binsExperiment } from './bins';
import { chunkSizes } from './chunk-sizes';
import { freeExperiment } from './free';
import { heapGrowth } from './heap-growth';
import { kernelCalls } from './kernel-calls';
import { layout } from './layout';
import { mmapThreshold } from './mmap-threshold';
import { paging } from './paging';
import { tcache } from './tcache';
import { HeapscopeError, typeError } from '../errors';
import { describe } from '../validate';
import type { Experiment, ExperimentResult } from './types';

export const EXPERIMENTS = [
  layout,
  kernelCalls,
  chunkSizes,
  heapGrowth,
  mmapThreshold,
  freeExperiment,
  tcache,
  binsExperiment,
  arenas,
  paging,
] as const;

/** Any one of the experiments, with its own name and row type. */
export type RegisteredExperiment = (typeof EXPERIMENTS)[number];

/** The name of an experiment: `'layout' | 'kernel-calls' | 'chunk-sizes' | …`. */
export type ExperimentName = RegisteredExperiment['name'];

/** The row type of each experiment, by name: `ExperimentRows['chunk-sizes']` is `ChunkSizeRow`. */
export type ExperimentRows = {
  [E in RegisteredExperiment as E['name']]: E extends Experiment<infer Row, string> ? Row : never;
};

/** The experiment named `N`. */
export type ExperimentNamed<N extends ExperimentName> = Extract<RegisteredExperiment, { name: N }>;

/**
 * What `run(name)` resolves to. For a union of names, a union of results
 * that their `name` tells apart.
 */
export type ResultOf<N extends ExperimentName> = N extends ExperimentName ? ExperimentResult<ExperimentRows[N], N> : never;

/** The experiments, in tour order. */
export function experiments(): readonly RegisteredExperiment[] {
  return EXPERIMENTS;
}

/**
 * The experiment named `name`. Names are checked here too, for plain
 * JavaScript and names from outside the program (a command line): an
 * unknown one is ERR_UNKNOWN_EXPERIMENT.
 */
export function experiment<N extends ExperimentName>(name: N): ExperimentNamed<N>;
export function experiment(name: string): RegisteredExperiment {
  if (typeof name !== 'string') throw typeError(`an experiment name is a string, got ${describe(name)}`);
  const found = EXPERIMENTS.find((e) => e.name === name);
  if (found === undefined) {
    throw new HeapscopeError(
      'ERR_UNKNOWN_EXPERIMENT',
      `no experiment named ${JSON.stringify(name)}; try one of: ${EXPERIMENTS.map((e) => e.name).join(', ')}`,
    );
  }
  return found;
}
