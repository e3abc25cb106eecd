// Each experiment's chart, where it has one: a standalone SVG document that
// is also valid inline in HTML. Every chart reads the result's rows only.
import { ResultData } from '../result-data';
import { lookup } from '../validate';
import { chunkSizesChart } from './charts/chunk-sizes';
import { freeChart } from './charts/free';
import { heapGrowthChart } from './charts/heap-growth';
import { layoutChart } from './charts/layout';
import { mmapThresholdChart } from './charts/mmap-threshold';

// Each chart takes its experiment's own row type; the name says which.
const CHARTS: Record<string, (result: ResultData<any>) => string | undefined> = {
  layout: layoutChart,
  'chunk-sizes': chunkSizesChart,
  'heap-growth': heapGrowthChart,
  'mmap-threshold': mmapThresholdChart,
  free: freeChart,
};

/** The names of the experiments that have a chart. */
export const CHARTED: readonly string[] = Object.keys(CHARTS);

export function resultSVG(result: ResultData): string | undefined {
  return lookup(CHARTS, result.name)?.(result);
}
