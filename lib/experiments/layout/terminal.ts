// The layout experiment in a terminal: where each object was, low to high.
import { hex, shortBytes } from '../../format';
import { TerminalView } from '../../presentation';
import { firstRows, REGION_COLOUR, RIGHT, terminalTable } from '../../table-spec';
import { LayoutRow } from './index';

export const layoutTerminal: TerminalView<LayoutRow> = {
  table: (_, chosen) => terminalTable({
    title: 'Where each object was, low to high',
    columns: [
      { head: 'object', cell: (r) => r.name },
      { head: 'address', cell: (r) => hex(r.address), ...RIGHT },
      { head: 'region', cell: (r) => (r.region === undefined ? '(none)' : r.region.kind), colour: (r) => (r.region && REGION_COLOUR[r.region.kind]) },
      { head: 'offset in it', cell: (r) => (r.offset === undefined ? '' : shortBytes(r.offset)), ...RIGHT },
      { head: 'what', cell: (r) => r.what, wrap: true },
    ],
    ...firstRows(chosen),
  }),
};
