// The result object run() returns: the measured data plus its views. The
// views live in lib/views and only ever read the data; they are reached
// through resultViews, which the view layer fills (lib/present.ts).
import { inspect } from 'node:util';
import { toJSONValue } from '../json';
import { InspectContext, MimeBundle, presenter } from '../presenters';
import { Environment, ExperimentResult, ResultData } from './types';

/** How a result shows itself; installed by the view layer. */
export const resultViews = presenter<{
  markdown(result: ResultData): string;
  html(result: ResultData): string;
  svg(result: ResultData): string | undefined;
  inspect(result: ResultData, depth: number, options?: InspectContext): string;
  bundle(result: ExperimentResult): MimeBundle;
}>('ExperimentResult');

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
    return resultViews.views.markdown(this);
  }

  toHTML(): string {
    return resultViews.views.html(this);
  }

  toSVG(): string | undefined {
    return resultViews.views.svg(this);
  }

  toJSON(): unknown {
    return toJSONValue({ ...this });
  }

  [inspect.custom](depth: number, options: Parameters<typeof inspect>[1]): string {
    return resultViews.views.inspect(this, depth, options);
  }

  /** Jupyter kernels that look for it (Deno's) show the richest MIME type. */
  [Symbol.for('Jupyter.display')](): Record<string, unknown> {
    return resultViews.views.bundle(this);
  }

  /** ijavascript's display hook. */
  _toMime(): Record<string, unknown> {
    return resultViews.views.bundle(this);
  }
}
