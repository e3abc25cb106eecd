// The tcache table: a line per request size, its test chunks freed one by
// one and malloc'd back, each with where it went or came from.
import { numbered, RIGHT, TableSpec } from '../../table-spec';
import { TcacheRow } from './index';

interface SizeLine {
  request: number;
  binSize: number;
  frees: string;
  back: string;
}

function bySize(rows: readonly TcacheRow[]): SizeLine[] {
  return [...new Set(rows.map((r) => r.request))].map((request) => {
    const own = rows.filter((r) => r.request === request);
    return {
      request,
      binSize: own[0].binSize,
      frees: own.filter((r) => r.step === 'free').map((r) => `${r.chunk ?? '?'}→${r.went ?? '?'}`).join(' '),
      back: own.filter((r) => r.step === 'remalloc').map((r) => `${r.chunk ?? '?'}←${r.from ?? '?'}`).join(' '),
    };
  });
}

export const tcacheTable: TableSpec<TcacheRow, SizeLine> = {
  title: (rows) => "Test chunks freed one by one, then malloc'd back (chunk → where it went; chunk ← where it came from" +
    `${rows.some((r) => r.step === 'remalloc' && r.chunk === undefined) ? '; ? = not a test chunk' : ''})`,
  select: (rows) => numbered(bySize(rows)),
  selection: "a row per request size: its test chunks' frees and mallocs back, in order; the drains and first mallocs are in the JSON",
  columns: [
    { title: 'request (B)', short: 'request', value: (l) => l.request, ...RIGHT },
    { title: 'chunk (B)', short: 'chunk', value: (l) => l.binSize, ...RIGHT },
    { title: 'frees, in order', value: (l) => l.frees, wrap: true },
    { title: 'mallocs back, in order', value: (l) => l.back, wrap: true },
  ],
};
