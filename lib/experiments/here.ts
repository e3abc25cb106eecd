// Running an experiment in this process. Kept apart from run.ts so that the
// child process of an isolated run loads only the experiments, not the
// views: every module loaded before the experiment shapes the heap it sees.
import { HeapscopeError, typeError } from '../errors';
import { glibcVersion, mallinfo2, pageSize } from '../stats';
import { ExperimentName, ExperimentNamed, EXPERIMENTS, RegisteredExperiment } from './registry';
import { describe } from '../validate';
import { parseTunablesEnv } from './tunables';
import { Environment, Experiment, ResultData } from './types';

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

export function environment(isolated: boolean): Environment {
  return {
    glibc: glibcVersion(),
    node: process.version,
    tunables: parseTunablesEnv(process.env.GLIBC_TUNABLES),
    isolated,
    execArgv: process.execArgv,
    pid: process.pid,
    pageSize: pageSize(),
    mallinfo: mallinfo2().source,
  };
}

export async function runHere(chosen: Experiment, isolated: boolean): Promise<ResultData> {
  const output = await chosen.run({ isolated });
  return { name: chosen.name, question: chosen.question, environment: environment(isolated), ...output };
}
