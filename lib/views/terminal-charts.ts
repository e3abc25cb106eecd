// Charts for a terminal, in Unicode, from their models (lib/chart-model.ts):
// a step chart, strips of points on a log scale, and a ladder of rungs.
// Knows no experiment: what each shows is the model's.
import type { Glyph, LadderChart, StepChart, StripChart, TerminalChart } from '../chart-model';
import { Resolved, wrap } from './terminal-text';

/** A terminal chart as lines, at most `o.width` wide; none when it does not fit. */
export function terminalChart(chart: TerminalChart, o: Resolved): string[] {
  switch (chart.kind) {
    case 'steps': return stepChart(chart, o);
    case 'strips': return stripChart(chart, o);
    case 'ladder': return ladderChart(chart, o);
  }
}

const title = (text: string, o: Resolved) => wrap(text, o.width).map((l) => o.paint('bold', l));
const glyph = (g: Glyph, o: Resolved) => o.paint(g.colour, g.symbol);

/**
 * A step function drawn as a line: a level is ─, a rise ┘…┌ and a fall
 * ┐…└ in one column. Each column shows the value at its end, carried
 * forward between points.
 */
function stepChart(chart: StepChart, o: Resolved): string[] {
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
  const lines = title(chart.title, o);
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

/** Rungs top to bottom, each with its link to the next under it. */
function ladderChart(chart: LadderChart, o: Resolved): string[] {
  const labelWidth = Math.max(...chart.rungs.map((r) => r.label.length));
  const tagWidth = Math.max(...chart.rungs.map((r) => r.tag.length));
  const lines = title(chart.title, o);
  chart.rungs.forEach((rung, i) => {
    const prefix = `${rung.label.padStart(labelWidth)} ${glyph(rung.glyph, o)} ${o.paint(rung.tagColour, rung.tag.padEnd(tagWidth))} `;
    const indent = ' '.repeat(labelWidth + tagWidth + 4);
    const text = wrap(rung.text, o.width - indent.length);
    lines.push(prefix + text[0], ...text.slice(1).map((l) => indent + l));
    const link = chart.links[i];
    if (link === undefined) return;
    lines.push(`${' '.repeat(labelWidth)} ${glyph(link.glyph, o)} ${o.paint('dim', link.caption)}`);
  });
  return lines;
}

/** One line per row: each point placed by x on a log scale shared by all rows, with ticks under them where they fit. */
function stripChart(chart: StripChart, o: Resolved): string[] {
  const xs = chart.rows.flatMap((r) => r.points.map((p) => p.x));
  if (xs.length === 0) return [];
  const nameWidth = Math.max(...chart.rows.map((r) => r.name.length));
  const plotWidth = o.width - nameWidth - 3;
  if (plotWidth < 10) return [];
  const lo = Math.log2(Math.min(...xs));
  const hi = Math.log2(Math.max(...xs));
  const columnOf = (x: number) => Math.min(plotWidth - 1, Math.round(((Math.log2(x) - lo) / (hi - lo || 1)) * (plotWidth - 1)));
  const indent = ' '.repeat(nameWidth + 3);
  const legend = [...Object.values(chart.glyphs), chart.clash];
  const colours = new Map(legend.map((g) => [g.symbol, g.colour]));
  const key = wrap(legend.map((g) => `${g.symbol} ${g.label}`).join(' '), o.width, indent)
    .map((l) => [...l].map((ch) => (colours.has(ch) ? o.paint(colours.get(ch), ch) : ch)).join(''));
  const lines = [...title(chart.title, o), ...key];
  for (const row of chart.rows) {
    // Each column: the name of its points' glyph, null where two differ, undefined where there is none.
    const columns: (string | null | undefined)[] = new Array(plotWidth).fill(undefined);
    for (const p of row.points) {
      const c = columnOf(p.x);
      columns[c] = columns[c] === undefined || columns[c] === p.glyph ? p.glyph : null;
    }
    const strip = columns.map((g) => glyph(g === undefined ? chart.empty : g === null ? chart.clash : chart.glyphs[g], o)).join('');
    lines.push(`${row.name.padStart(nameWidth)} │ ${strip}`);
  }
  // Each tick where it neither runs into the one before nor past the strip.
  let axis = '';
  for (const t of chart.ticks) {
    const label = `↑${t.label}`;
    const at = columnOf(t.x);
    if (at < axis.length + 1 && axis !== '' || at + label.length > plotWidth) continue;
    axis = `${axis.padEnd(at)}${label}`;
  }
  lines.push(`${indent}${axis}`);
  return lines;
}
