// REPL views (util.inspect.custom). To be filled in: short, hex addresses, flags spelled out.
import { inspect } from 'node:util';
import { ResultData } from '../experiments/types';

export function inspectResult(result: ResultData, _depth: number, options: Parameters<typeof inspect>[1]): string {
  return inspect({ name: result.name, question: result.question, findings: result.findings, surprises: result.surprises }, options);
}
