// The arenas table: every chunk malloc'd in the main thread and in a worker
// thread, and the region it lies in.
import { chunkFlags } from '../../chunk';
import { RIGHT, TableSpec, withIndex } from '../../table-spec';
import { ArenaChunkRow, ArenaRow } from './index';

const chunks = (rows: readonly ArenaRow[]) => rows.filter((r): r is ArenaChunkRow => r.what === 'chunk');

export const arenasTable: TableSpec<ArenaRow, ArenaChunkRow> = {
  title: 'Chunks from the main thread and from a worker thread',
  select: (rows) => withIndex(rows, chunks(rows)),
  selection: "every chunk; the worker heap's maps, heap_info and malloc_info readings are in the findings and the JSON",
  columns: [
    { title: 'thread', value: (r) => r.thread, colour: (r) => (r.thread === 'worker' ? 'magenta' : undefined) },
    { title: 'phase', value: (r) => r.phase },
    { title: 'request (B)', short: 'request', value: (r) => r.request, ...RIGHT },
    { title: 'address', value: (r) => r.address, ...RIGHT },
    { title: 'chunk (B)', short: 'chunk', value: (r) => r.header.size, ...RIGHT },
    { title: 'flags', value: (r) => chunkFlags(r.header) },
    { title: 'region', value: (r) => r.region },
    { title: 'region start', value: (r) => r.regionStart, ...RIGHT, drop: 1 },
  ],
};
