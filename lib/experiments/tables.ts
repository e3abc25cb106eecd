// Each experiment's own table of rows (for Markdown and HTML), by name. Kept
// apart from the registry so that an isolated run's child loads none of it.
import type { TableSpec } from '../table-spec';
import { chunkSizesTable } from './chunk-sizes/table';
import { freeTable } from './free/table';
import { heapGrowthTable } from './heap-growth/table';
import { layoutTable } from './layout/table';
import { mmapThresholdTable } from './mmap-threshold/table';
import type { ExperimentName } from './registry';

export const TABLES: Partial<Record<ExperimentName, TableSpec<any>>> = {
  layout: layoutTable,
  'chunk-sizes': chunkSizesTable,
  'heap-growth': heapGrowthTable,
  'mmap-threshold': mmapThresholdTable,
  free: freeTable,
};
