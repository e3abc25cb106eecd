// The paging table: each block at each moment, its resident pages and the process RSS.
import { chunkFlags } from '../../chunk';
import { shortBytes } from '../../format';
import { allRows, RIGHT, signed, TableSpec } from '../../table-spec';
import { PagingRow } from './index';

export const pagingTable: TableSpec<PagingRow> = {
  title: 'Resident pages of each block, and the process RSS',
  select: allRows,
  selection: 'every block when allocated and touched, then the two mmapped blocks when freed, in the order measured',
  columns: [
    { title: 'block', value: (r) => `${r.call}(${shortBytes(r.request)}) ${r.block.replace(/^(malloc|calloc)-/, '')}` },
    { title: 'flags', value: (r) => chunkFlags(r.header), drop: 4 },
    { title: 'address', value: (r) => r.address, ...RIGHT, drop: 1 },
    { title: 'moment', value: (r) => r.moment },
    { title: 'resident (pages)', short: 'resident', value: (r) => (r.residentPages === undefined ? undefined : `${r.residentPages}/${r.totalPages}`), ...RIGHT },
    { title: 'RSS change (pages)', short: 'RSS change', value: (r) => signed(r.rssDeltaPages), ...RIGHT },
    { title: 'RSS (pages)', short: 'RSS', value: (r) => r.rssPages, ...RIGHT, drop: 3 },
    {
      title: 'top chunk before → after (B)', short: 'top before → after', ...RIGHT, drop: 2,
      value: (r) => (r.topBefore === undefined ? undefined : `${r.topBefore} → ${r.topAfter}`),
    },
  ],
};
