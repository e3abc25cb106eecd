// The layout table: every row and its columns.
import { hex } from '../../format';
import { allRows, TableSpec } from '../../table-spec';
import { LayoutRow } from './index';

export const layoutTable: TableSpec<LayoutRow> = {
  select: allRows,
  selection: 'every row',
  columns: [
    { title: 'name', value: (r) => r.name },
    { title: 'what', value: (r) => r.what },
    { title: 'address', value: (r) => r.address },
    { title: 'region', value: (r) => (r.region === undefined ? '' : `${r.region.kind} ${r.region.perms} ${r.region.path || 'anonymous'}`) },
    { title: 'region start–end', value: (r) => (r.region === undefined ? '' : `${hex(r.region.start)}–${hex(r.region.end)}`) },
    { title: 'offset (B)', numeric: true, value: (r) => r.offset },
    { title: 'from previous row (B)', numeric: true, value: (r) => r.distance },
  ],
};
