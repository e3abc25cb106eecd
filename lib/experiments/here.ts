// Running an experiment in this process. Kept apart from run.ts and the
// registry so that the child process of an isolated run loads only its own
// experiment, not the views nor the other experiments: every module loaded
// before the experiment shapes the heap it sees (and loading all ten cost
// each child ~140 ms).
import { glibcVersion, mallinfo2, pageSize } from '../stats';
import { parseTunablesEnv } from './tunables';
import { Environment, Experiment, ResultData } from './types';

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
