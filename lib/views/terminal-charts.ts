// Charts for a terminal, in Unicode: a step chart from its model, and the
// drawings not yet expressed as a model (layout's address space,
// mmap-threshold's strip of probes).
import type { StepChart } from '../chart-model';
import { LayoutRow } from '../experiments/layout';
import { MmapThresholdRow } from '../experiments/mmap-threshold';
import { phaseOrder, probeRows } from '../experiments/mmap-threshold/table';
import { hex, shortBytes } from '../format';
import { REGION_COLOUR } from '../table-spec';
import { Resolved, wrap } from './terminal-text';

/**
 * A step function drawn as a line: a level is ─, a rise ┘…┌ and a fall
 * ┐…└ in one column. Each column shows the value at its end, carried
 * forward between points.
 */
export function stepChart(chart: StepChart, o: Resolved): string[] {
  const { xs, ys, height } = chart;
  if (xs.length === 0) return [];
  const yMin = Math.min(...ys);
  const yMax = Math.max(...ys);
  const rowValue = (row: number) => yMin + ((yMax - yMin) * row) / Math.max(1, height - 1);
  const labelRows = new Set(chart.labelEveryRow ? [...Array(height).keys()] : [0, Math.floor((height - 1) / 2), height - 1]);
  const labels = new Map([...labelRows].map((row) => [row, chart.yLabel(rowValue(row))]));
  const labelWidth = Math.max(...[...labels.values()].map((l) => l.length));
  const x0 = xs[0];
  // With whole x values per column the plot ends where the data does.
  const needed = chart.perColumn === undefined ? Infinity : Math.ceil((xs[xs.length - 1] - x0 + 1) / chart.perColumn);
  const plotWidth = Math.min(o.width - labelWidth - 2, needed);
  if (plotWidth < 10) return [];
  const span = chart.perColumn !== undefined ? chart.perColumn * plotWidth : xs[xs.length - 1] - x0 || 1;
  const columnOf = (x: number) => Math.min(plotWidth - 1, Math.floor(((x - x0) / span) * plotWidth));
  const atEnd: (number | undefined)[] = new Array(plotWidth).fill(undefined);
  xs.forEach((x, i) => {
    if (x - x0 < span) atEnd[columnOf(x)] = ys[i];
  });
  const lastColumn = columnOf(Math.min(xs[xs.length - 1], x0 + span - 1));
  const rowOf = (y: number) => Math.round(((y - yMin) / (yMax - yMin || 1)) * (height - 1));
  const grid = Array.from({ length: height }, () => new Array<string>(plotWidth).fill(' '));
  let previous: number | undefined;
  for (let c = 0; c <= lastColumn; c++) {
    const value = atEnd[c] ?? previous;
    if (value === undefined) continue;
    const row = rowOf(value);
    const before = previous === undefined ? row : rowOf(previous);
    if (row === before) grid[row][c] = '─';
    else {
      const [low, high] = row > before ? [before, row] : [row, before];
      for (let r = low + 1; r < high; r++) grid[r][c] = '│';
      grid[before][c] = row > before ? '┘' : '┐';
      grid[row][c] = row > before ? '┌' : '└';
    }
    previous = value;
  }
  const lines = wrap(chart.title, o.width).map((l) => o.paint('bold', l));
  for (let r = height - 1; r >= 0; r--) {
    const label = labels.get(r) ?? '';
    lines.push(`${label.padStart(labelWidth)} ${label ? '┤' : '│'}${o.paint(chart.colour, grid[r].join('').trimEnd())}`);
  }
  lines.push(`${' '.repeat(labelWidth)} └${'─'.repeat(plotWidth)}`);
  const from = chart.xLabel(x0);
  const to = chart.xLabel(xs[xs.length - 1]);
  const gap = plotWidth - from.length - to.length;
  const name = gap >= chart.xName.length + 2 ? chart.xName : '';
  const left = Math.max(1, Math.floor((gap - name.length) / 2));
  lines.push(`${' '.repeat(labelWidth + 2)}${from}${' '.repeat(left)}${name}`.padEnd(labelWidth + 2 + plotWidth - to.length) + to);
  if (chart.marks !== undefined) {
    // Each mark on the first of two lines where it does not run into another.
    const rows = ['', ''];
    for (const mark of chart.marks) {
      const at = labelWidth + 2 + columnOf(mark.x);
      const text = `↑${mark.label}`;
      const free = rows.findIndex((line) => (line === '' || at > line.length) && at + text.length <= o.width);
      if (free >= 0) rows[free] = `${rows[free].padEnd(at)}${text}`;
    }
    lines.push(...rows.filter((line) => line !== ''));
  }
  return lines;
}

// ---------------------------------------------------------------- experiments

/** The address-ordered objects, highest first, as a vertical bar; the gaps compressed to one labelled line. */
export function layoutDiagram(rows: LayoutRow[], o: Resolved): string[] {
  const addressWidth = Math.max(...rows.map((r) => hex(r.address).length));
  const kindWidth = Math.max(...rows.map((r) => (r.region?.kind ?? '').length));
  const lines = wrap('The address space, top to bottom (gaps not to scale, labelled with their size)', o.width).map((l) => o.paint('bold', l));
  const descending = [...rows].reverse();
  descending.forEach((row, i) => {
    const kind = row.region?.kind;
    const bar = o.paint(kind === undefined ? 'dim' : REGION_COLOUR[kind], kind === undefined ? '╋' : '█');
    const prefix = `${hex(row.address).padStart(addressWidth)} ${bar} ${o.paint(kind && REGION_COLOUR[kind], (kind ?? '').padEnd(kindWidth))} `;
    const indent = ' '.repeat(addressWidth + kindWidth + 4);
    const text = wrap(`${row.name}: ${row.what}`, o.width - indent.length);
    lines.push(prefix + text[0], ...text.slice(1).map((l) => indent + l));
    const below = descending[i + 1];
    if (below === undefined) return;
    // The row above says how far it is from the one below it; within one
    // region the bar stays solid, across a region boundary it is dotted.
    const gap = row.distance === undefined ? 'the kernel half of the address space' : `${shortBytes(row.distance)} apart`;
    const same = row.region !== undefined && below.region !== undefined && row.region.start === below.region.start;
    const link = same && kind !== undefined ? o.paint(REGION_COLOUR[kind], '█') : o.paint('dim', '┊');
    lines.push(`${' '.repeat(addressWidth)} ${link} ${o.paint('dim', `↕ ${gap}${same ? ` in the same ${kind} region` : ''}`)}`);
  });
  return lines;
}

/** One line per phase: each probe placed by its chunk size on a log scale, ● mmapped, ○ from the heap. */
export function thresholdStrip(rows: MmapThresholdRow[], o: Resolved): string[] {
  const all = probeRows(rows);
  const probes = all.filter((r) => r.role === 'probe' || r.role === 'sweep');
  if (probes.length === 0) return [];
  const phases = phaseOrder(all);
  const nameWidth = Math.max(...phases.map((p) => p.length));
  const plotWidth = o.width - nameWidth - 3;
  if (plotWidth < 10) return [];
  const lo = Math.log2(Math.min(...probes.map((r) => r.chunkSize)));
  const hi = Math.log2(Math.max(...probes.map((r) => r.chunkSize)));
  const columnOf = (size: number) => Math.min(plotWidth - 1, Math.round(((Math.log2(size) - lo) / (hi - lo || 1)) * (plotWidth - 1)));
  const indent = ' '.repeat(nameWidth + 3);
  const legend = wrap('● mmapped ○ from the heap ◐ both in one column', o.width, indent)
    .map((l) => l.replace(/[●○◐]/g, (m) => o.paint(m === '●' ? 'red' : m === '○' ? 'green' : 'yellow', m)));
  const lines = [...wrap('Which probes were mmapped, by chunk size (log scale)', o.width).map((l) => o.paint('bold', l)), ...legend];
  for (const phase of phases) {
    const marks: ('m' | 'h' | 'b' | undefined)[] = new Array(plotWidth).fill(undefined);
    for (const r of probes.filter((p) => p.phase === phase)) {
      const c = columnOf(r.chunkSize);
      const mark = r.mmapped ? 'm' : 'h';
      marks[c] = marks[c] === undefined || marks[c] === mark ? mark : 'b';
    }
    const strip = marks.map((m) => (m === 'm' ? o.paint('red', '●') : m === 'h' ? o.paint('green', '○') : m === 'b' ? o.paint('yellow', '◐') : o.paint('dim', '·'))).join('');
    lines.push(`${phase.padStart(nameWidth)} │ ${strip}`);
  }
  // Ticks at the powers of two that fit, so a reader can place a size.
  let axis = '';
  for (let p = Math.ceil(lo); p <= Math.floor(hi); p++) {
    const label = `↑${shortBytes(2 ** p)}`;
    const at = columnOf(2 ** p);
    if (at < axis.length + 1 && axis !== '' || at + label.length > plotWidth) continue;
    axis = `${axis.padEnd(at)}${label}`;
  }
  lines.push(`${' '.repeat(nameWidth + 3)}${axis}`);
  return lines;
}
