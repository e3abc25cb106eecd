// The layout experiment's terminal chart: the address space as a ladder,
// top to bottom. Its table is table.ts, the one every view draws.
import type { TerminalChart } from '../../chart-model';
import { hex, shortBytes } from '../../format';
import { ResultData } from '../../result-data';
import { REGION_COLOUR } from '../../table-spec';
import { LayoutRow } from './index';

export function layoutTerminalChart(result: ResultData<LayoutRow>): TerminalChart {
  const descending = [...result.rows].reverse();
  return {
    kind: 'ladder',
    title: 'The address space, top to bottom (gaps not to scale, labelled with their size)',
    rungs: descending.map((row) => {
      const kind = row.region?.kind;
      return {
        label: hex(row.address),
        glyph: kind === undefined ? { symbol: '╋', colour: 'dim' } : { symbol: '█', colour: REGION_COLOUR[kind] },
        tag: kind ?? '',
        tagColour: kind && REGION_COLOUR[kind],
        text: `${row.name}: ${row.what}`,
      };
    }),
    // Each row says how far it is from the one below it; within one
    // region the link stays solid, across a region boundary it is dotted.
    links: descending.slice(0, -1).map((row, i) => {
      const below = descending[i + 1];
      const kind = row.region?.kind;
      const gap = row.distance === undefined ? 'the kernel half of the address space' : `${shortBytes(row.distance)} apart`;
      const same = row.region !== undefined && below.region !== undefined && row.region.start === below.region.start;
      return {
        glyph: same && kind !== undefined ? { symbol: '█', colour: REGION_COLOUR[kind] } : { symbol: '┊', colour: 'dim' },
        caption: `↕ ${gap}${same ? ` in the same ${kind} region` : ''}`,
      };
    }),
  };
}
