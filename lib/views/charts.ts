// Each experiment's chart, where it has one: its figure (built in the
// experiment's chart.ts) drawn as a standalone SVG document that is also
// valid inline in HTML.
import type { Figure } from '../chart-model';
import { ResultData } from '../result-data';
import { lookup } from '../validate';
import { figureSVG } from './charts/figure';

// Each experiment's figure, by name (lib/experiments/presentations.ts),
// filled by the entry points (lib/present.ts).
const CHARTS: Record<string, (result: ResultData<any>) => Figure | undefined> = Object.create(null);

/** Gives the named experiments their own charts. */
export function installCharts(charts: Readonly<Record<string, (result: ResultData<any>) => Figure | undefined>>): void {
  Object.assign(CHARTS, charts);
}

export function resultSVG(result: ResultData): string | undefined {
  const figure = lookup(CHARTS, result.name)?.(result);
  return figure === undefined ? undefined : figureSVG(figure);
}
