// The arenas experiment in a terminal: chunks from the main thread and from a worker.
import { chunkFlags } from '../../chunk';
import { hex } from '../../format';
import { TerminalView } from '../../presentation';
import { RIGHT, terminalTable } from '../../table-spec';
import { ArenaChunkRow, ArenaRow } from './index';

export const arenasTerminal: TerminalView<ArenaRow> = {
  table: (rows) => {
  const chunks = rows.filter((r): r is ArenaChunkRow => r.what === 'chunk');
  const first = chunks.filter((r) => r.phase === 'first');
  const growth = chunks.filter((r) => r.phase === 'growth');
  const shown = [...first, ...growth.slice(0, 2), ...growth.slice(-1)].filter((r, i, all) => all.indexOf(r) === i);
  return terminalTable({
    title: 'Chunks from the main thread and from a worker thread',
    columns: [
      { head: 'thread', cell: (r) => r.thread, colour: (r) => (r.thread === 'worker' ? 'magenta' : undefined) },
      { head: 'phase', cell: (r) => r.phase },
      { head: 'request', cell: (r) => String(r.request), ...RIGHT },
      { head: 'address', cell: (r) => hex(r.address), ...RIGHT },
      { head: 'chunk', cell: (r) => String(r.header.size), ...RIGHT },
      { head: 'flags', cell: (r) => chunkFlags(r.header) },
      { head: 'region', cell: (r) => r.region },
    ],
    rows: shown,
    omitted: rows.length - shown.length,
  });
  },
};
