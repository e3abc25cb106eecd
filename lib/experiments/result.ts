// The result object run() returns: the measured data plus its views. The
// views live in lib/views and only ever read the data.
import { inspect } from 'node:util';
import { toJSONValue } from '../json';
import { inspectResult } from '../views/inspect';
import { mimeBundle } from '../views/jupyter';
import { resultHTML } from '../views/html';
import { resultMarkdown } from '../views/markdown';
import { resultSVG } from '../views/charts';
import { Environment, ExperimentResult, ResultData } from './types';

export class ExperimentResultView<Row extends object = object, Name extends string = string> implements ExperimentResult<Row, Name> {
  name: Name;
  question: string;
  environment: Environment;
  rows: Row[];
  findings: string[];
  surprises: string[];

  constructor(data: ResultData<Row, Name>) {
    this.name = data.name;
    this.question = data.question;
    this.environment = data.environment;
    this.rows = data.rows;
    this.findings = data.findings;
    this.surprises = data.surprises;
  }

  toMarkdown(): string {
    return resultMarkdown(this);
  }

  toHTML(): string {
    return resultHTML(this);
  }

  toSVG(): string | undefined {
    return resultSVG(this);
  }

  toJSON(): unknown {
    return toJSONValue({ ...this });
  }

  [inspect.custom](depth: number, options: Parameters<typeof inspect>[1]): string {
    return inspectResult(this, depth, options);
  }

  /** Jupyter kernels that look for it (Deno's) show the richest MIME type. */
  [Symbol.for('Jupyter.display')](): Record<string, unknown> {
    return mimeBundle(this);
  }

  /** ijavascript's display hook. */
  _toMime(): Record<string, unknown> {
    return mimeBundle(this);
  }
}
