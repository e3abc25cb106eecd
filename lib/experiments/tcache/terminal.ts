// The tcache experiment in a terminal: each request's chunks, freed and malloc'd back.
import { TerminalView } from '../../presentation';
import { RIGHT, terminalTable } from '../../table-spec';
import { TcacheRow } from './index';

export const tcacheTerminal: TerminalView<TcacheRow> = {
  table: (rows) => {
  const requests = [...new Set(rows.map((r) => r.request))];
  const groups = requests.map((request) => {
    const own = rows.filter((r) => r.request === request);
    return {
      request,
      binSize: own[0].binSize,
      frees: own.filter((r) => r.step === 'free').map((r) => `${r.chunk ?? '?'}→${r.went ?? '?'}`).join(' '),
      back: own.filter((r) => r.step === 'remalloc').map((r) => `${r.chunk ?? '?'}←${r.from ?? '?'}`).join(' '),
    };
  });
  const unknown = rows.some((r) => r.step === 'remalloc' && r.chunk === undefined);
  return terminalTable({
    title: `Test chunks freed one by one, then malloc'd back (chunk → where it went; chunk ← where it came from${unknown ? '; ? = not a test chunk' : ''})`,
    columns: [
      { head: 'request', cell: (g) => String(g.request), ...RIGHT },
      { head: 'chunk', cell: (g) => String(g.binSize), ...RIGHT },
      { head: 'frees, in order', cell: (g) => g.frees, wrap: true },
      { head: 'mallocs back, in order', cell: (g) => g.back, wrap: true },
    ],
    rows: groups,
    omitted: rows.filter((r) => r.step === 'drain' || r.step === 'malloc').length,
  });
  },
};
