// The kernel-calls table: each call, what it did to the break and the top
// chunk, and what the kernel saw.
import { allRows, RIGHT, signed, TableSpec } from '../../table-spec';
import { KernelCallRow } from './index';

export const kernelCallsTable: TableSpec<KernelCallRow> = {
  title: 'Each call, and what the kernel saw',
  select: allRows,
  selection: 'every call, in order',
  columns: [
    { title: 'call', value: (r) => (r.op === 'malloc' ? `malloc(${r.size})` : `free(malloc(${r.size}))`) },
    { title: 'role', value: (r) => r.role, drop: 2 },
    { title: 'chunk (B)', short: 'chunk', value: (r) => r.chunkSize, ...RIGHT, drop: 5 },
    { title: 'mmapped (M)', short: 'M', value: (r) => (r.mmapped ? 'M' : ''), drop: 6 },
    { title: 'address', value: (r) => r.address, ...RIGHT, drop: 1 },
    { title: 'region', value: (r) => r.region?.kind, drop: 3 },
    { title: 'break moved (B)', short: 'break moved', value: (r) => signed(r.breakDelta), ...RIGHT, drop: 7 },
    { title: 'top chunk before → after (B)', short: 'top before → after', value: (r) => `${r.topBefore} → ${r.topAfter}`, ...RIGHT, drop: 4 },
    {
      title: 'verdict', value: (r) => r.verdict, wrap: true,
      colour: (r) => (r.verdict === 'served from memory it held' ? 'green' : 'yellow'),
    },
  ],
};
