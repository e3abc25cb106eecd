// The layout table: every object, low to high, with the region it lies in.
import { hex, shortBytes } from '../../format';
import { allRows, REGION_COLOUR, RIGHT, TableSpec } from '../../table-spec';
import { LayoutRow } from './index';

const size = (n: number | undefined) => (n === undefined ? undefined : shortBytes(n));

export const layoutTable: TableSpec<LayoutRow> = {
  title: 'Where each object was, low to high',
  select: allRows,
  selection: 'every object, low to high',
  // Offsets and gaps run from bytes to terabytes: in binary units, which read at a glance.
  columns: [
    { title: 'object', value: (r) => r.name },
    { title: 'address', value: (r) => r.address, ...RIGHT },
    { title: 'region', value: (r) => r.region?.kind ?? '(none)', colour: (r) => (r.region && REGION_COLOUR[r.region.kind]) },
    { title: 'perms', value: (r) => r.region?.perms, drop: 4 },
    { title: 'offset in it', short: 'offset', value: (r) => size(r.offset), ...RIGHT },
    { title: 'from the row before', short: 'gap', value: (r) => size(r.distance), ...RIGHT, drop: 3 },
    { title: 'what', value: (r) => r.what, wrap: true },
    { title: 'region start–end', value: (r) => (r.region === undefined ? undefined : `${hex(r.region.start)}–${hex(r.region.end)}`), drop: 1 },
    { title: 'mapped file', short: 'file', value: (r) => r.region?.path, path: true, drop: 2 },
  ],
};
