// How each experiment presents its rows, by name: its table (the one every
// view draws), its chart and its terminal chart (each in the experiment's
// folder). Kept apart from the registry so that an isolated run's child
// loads none of it.
import type { Presentation } from '../presentation';
import { arenasTable } from './arenas/table';
import { binsTable } from './bins/table';
import { chunkSizesChart } from './chunk-sizes/chart';
import { chunkSizesTable } from './chunk-sizes/table';
import { chunkSizesTerminalChart } from './chunk-sizes/terminal';
import { freeChart } from './free/chart';
import { freeTable } from './free/table';
import { freeTerminalChart } from './free/terminal';
import { heapGrowthChart } from './heap-growth/chart';
import { heapGrowthTable } from './heap-growth/table';
import { heapGrowthTerminalChart } from './heap-growth/terminal';
import { kernelCallsTable } from './kernel-calls/table';
import { layoutChart } from './layout/chart';
import { layoutTable } from './layout/table';
import { layoutTerminalChart } from './layout/terminal';
import { mmapThresholdChart } from './mmap-threshold/chart';
import { mmapThresholdTable } from './mmap-threshold/table';
import { mmapThresholdTerminalChart } from './mmap-threshold/terminal';
import { pagingTable } from './paging/table';
import type { ExperimentName } from './registry';
import { tcacheTable } from './tcache/table';

export const PRESENTATIONS: Record<ExperimentName, Presentation> = {
  layout: { table: layoutTable, chart: layoutChart, terminalChart: layoutTerminalChart },
  'kernel-calls': { table: kernelCallsTable },
  'chunk-sizes': { table: chunkSizesTable, chart: chunkSizesChart, terminalChart: chunkSizesTerminalChart },
  'heap-growth': { table: heapGrowthTable, chart: heapGrowthChart, terminalChart: heapGrowthTerminalChart },
  'mmap-threshold': { table: mmapThresholdTable, chart: mmapThresholdChart, terminalChart: mmapThresholdTerminalChart },
  free: { table: freeTable, chart: freeChart, terminalChart: freeTerminalChart },
  tcache: { table: tcacheTable },
  bins: { table: binsTable },
  arenas: { table: arenasTable },
  paging: { table: pagingTable },
};
