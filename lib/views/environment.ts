// Where and how a result was measured, in one line. The REPL and the
// terminal show it beside the findings, so it is brief there; a Markdown or
// HTML document is read later and elsewhere, so it says more (the pid, the
// page size, where the statistics came from).
import type { ResultData } from '../result-data';

export function environmentLine(result: Pick<ResultData, 'environment'>, detail: 'brief' | 'full' = 'brief'): string {
  const env = result.environment;
  const tunables = Object.entries(env.tunables).map(([k, v]) => `${k}=${v}`);
  if (detail === 'brief') {
    return `glibc ${env.glibc}, node ${env.node}, ${env.isolated ? 'fresh child process' : 'this process'}` +
      (tunables.length === 0 ? '' : `, ${tunables.join(' ')}`);
  }
  return `glibc ${env.glibc}, Node.js ${env.node}, ${env.isolated ? 'a fresh child process' : 'in-process'} (pid ${env.pid}), ` +
    `${env.pageSize}-byte pages, statistics from ${env.mallinfo}` + (tunables.length === 0 ? '' : `, tunables ${tunables.join(', ')}`);
}
