// How each experiment presents its rows, by name: its document table and
// chart, its terminal table and terminal chart (each in the experiment's
// folder). Kept
// apart from the registry so that an isolated run's child loads none of it.
import type { Presentation } from '../presentation';
import { arenasTerminal } from './arenas/terminal';
import { chunkSizesChart } from './chunk-sizes/chart';
import { chunkSizesTable } from './chunk-sizes/table';
import { chunkSizesTerminal } from './chunk-sizes/terminal';
import { freeChart } from './free/chart';
import { freeTable } from './free/table';
import { freeTerminal } from './free/terminal';
import { heapGrowthChart } from './heap-growth/chart';
import { heapGrowthTable } from './heap-growth/table';
import { heapGrowthTerminal } from './heap-growth/terminal';
import { kernelCallsTerminal } from './kernel-calls/terminal';
import { layoutChart } from './layout/chart';
import { layoutTable } from './layout/table';
import { layoutTerminal } from './layout/terminal';
import { mmapThresholdChart } from './mmap-threshold/chart';
import { mmapThresholdTable } from './mmap-threshold/table';
import { mmapThresholdTerminal } from './mmap-threshold/terminal';
import { pagingTerminal } from './paging/terminal';
import type { ExperimentName } from './registry';
import { tcacheTerminal } from './tcache/terminal';

export const PRESENTATIONS: Record<ExperimentName, Presentation> = {
  layout: { table: layoutTable, chart: layoutChart, terminal: layoutTerminal },
  'kernel-calls': { terminal: kernelCallsTerminal },
  'chunk-sizes': { table: chunkSizesTable, chart: chunkSizesChart, terminal: chunkSizesTerminal },
  'heap-growth': { table: heapGrowthTable, chart: heapGrowthChart, terminal: heapGrowthTerminal },
  'mmap-threshold': { table: mmapThresholdTable, chart: mmapThresholdChart, terminal: mmapThresholdTerminal },
  free: { table: freeTable, chart: freeChart, terminal: freeTerminal },
  tcache: { terminal: tcacheTerminal },
  arenas: { terminal: arenasTerminal },
  paging: { terminal: pagingTerminal },
};
