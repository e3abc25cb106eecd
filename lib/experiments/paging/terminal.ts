// The paging experiment in a terminal: resident pages of each block, and the process RSS.
import { chunkFlags } from '../../chunk';
import { shortBytes } from '../../format';
import { TerminalView } from '../../presentation';
import { firstRows, RIGHT, terminalTable } from '../../table-spec';
import { PagingRow } from './index';

export const pagingTerminal: TerminalView<PagingRow> = {
  table: (_, chosen) => terminalTable({
    title: 'Resident pages of each block, and the process RSS',
    columns: [
      { head: 'block', cell: (r) => `${r.call}(${shortBytes(r.request)}) ${r.block.replace(/^(malloc|calloc)-/, '')}` },
      { head: 'flags', cell: (r) => chunkFlags(r.header) },
      { head: 'moment', cell: (r) => r.moment },
      { head: 'resident', cell: (r) => (r.residentPages === undefined ? '' : `${r.residentPages}/${r.totalPages}`), ...RIGHT },
      { head: 'RSS change', cell: (r) => `${r.rssDeltaPages > 0 ? '+' : ''}${r.rssDeltaPages} pages`, ...RIGHT },
    ],
    ...firstRows(chosen),
  }),
};
