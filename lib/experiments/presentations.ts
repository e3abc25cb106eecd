// How each experiment presents its rows, by name: its document table, its
// terminal table and chart model (each in the experiment's folder). Kept
// apart from the registry so that an isolated run's child loads none of it.
import type { Presentation } from '../presentation';
import { arenasTerminal } from './arenas/terminal';
import { chunkSizesTable } from './chunk-sizes/table';
import { chunkSizesTerminal } from './chunk-sizes/terminal';
import { freeTable } from './free/table';
import { freeTerminal } from './free/terminal';
import { heapGrowthTable } from './heap-growth/table';
import { heapGrowthTerminal } from './heap-growth/terminal';
import { kernelCallsTerminal } from './kernel-calls/terminal';
import { layoutTable } from './layout/table';
import { layoutTerminal } from './layout/terminal';
import { mmapThresholdTable } from './mmap-threshold/table';
import { mmapThresholdTerminal } from './mmap-threshold/terminal';
import { pagingTerminal } from './paging/terminal';
import type { ExperimentName } from './registry';
import { tcacheTerminal } from './tcache/terminal';

export const PRESENTATIONS: Record<ExperimentName, Presentation> = {
  layout: { table: layoutTable, terminal: layoutTerminal },
  'kernel-calls': { terminal: kernelCallsTerminal },
  'chunk-sizes': { table: chunkSizesTable, terminal: chunkSizesTerminal },
  'heap-growth': { table: heapGrowthTable, terminal: heapGrowthTerminal },
  'mmap-threshold': { table: mmapThresholdTable, terminal: mmapThresholdTerminal },
  free: { table: freeTable, terminal: freeTerminal },
  tcache: { terminal: tcacheTerminal },
  arenas: { terminal: arenasTerminal },
  paging: { terminal: pagingTerminal },
};
