// The free/trim timeline: the program break, the resident set and mmapped
// bytes after every step of the four cases, side by side.
import { FreeRow, FreeStepRow } from '../../experiments/free';
import { breakOf, isRssMark } from '../../experiments/free/table';
import { ResultData } from '../../result-data';
import { hex, shortBytes } from '../../format';
import {
  axisLeft, byteTicks, COLORS, el, HALO, LabelPlacer, line, linear, niceTicks, path, phaseRuns, polyline, rect, spotsAround, svgDocument, text, textBox,
} from '../svg';

const W = 760;
const M = { left: 84, right: 130, top: 58 };
const PANEL = 130;
const GAP = 46;
/** A phase never gets less than this share of the width, so that a 3-step phase stays visible. */
const MIN_SHARE = 0.1;
/** The data labels' font size. */
const LABEL = 10;
/** Marks closer than this (px) are one point to the eye: they share a label. */
const SAME_POINT = 6;

const PHASE: Record<FreeRow['phase'], string> = {
  small: 'small chunk',
  'trim-on-free': 'frees into the top',
  'malloc-trim': 'malloc_trim',
  mmapped: 'mmapped chunk',
};

export function freeChart(result: ResultData<FreeRow>): string | undefined {
  const rows = result.rows;
  if (rows.length === 0) return undefined;
  const page = result.environment.pageSize;

  // x: each phase gets its share of the width, and its steps spread evenly inside it.
  const phases = phaseRuns(rows);
  const width = W - M.left - M.right;
  const shares = phases.map((p) => Math.max(p.to - p.from + 1, rows.length * MIN_SHARE));
  const total = shares.reduce((a, b) => a + b, 0);
  const starts: number[] = [];
  shares.reduce((at, s) => (starts.push(at), at + (s / total) * width), M.left);
  const xs = rows.map((_, i) => {
    const k = phases.findIndex((p) => p.from <= i && i <= p.to);
    const p = phases[k];
    const n = p.to - p.from + 1;
    return starts[k] + ((i - p.from + 0.5) / n) * ((shares[k] / total) * width);
  });

  const parts: string[] = [];
  const panels = [M.top + 14, M.top + 14 + PANEL + GAP, M.top + 14 + 2 * (PANEL + GAP)];
  // Each panel's labels stay inside it (the right margin included) and off its points and other text.
  const placer = (top: number) => new LabelPlacer(LABEL, { x0: M.left, y0: top, x1: W, y1: top + PANEL });
  const bottom = panels[2] + PANEL;
  phases.forEach((p, k) => {
    const x0 = starts[k];
    const x1 = x0 + (shares[k] / total) * width;
    if (k % 2 === 0) parts.push(rect(x0, M.top, x1 - x0, bottom - M.top, { fill: '#f3f3f3' }));
    // Alternate heights: a narrow phase's title may be wider than its band.
    parts.push(text((x0 + x1) / 2, 14 + (k % 2) * 14, `${PHASE[p.phase]} (${p.to - p.from + 1} steps)`, { 'text-anchor': 'middle', class: 'phase-label', fill: '#555' }));
  });

  // Panel 1: the break, relative to the lowest break seen.
  const breaks = rows.map(breakOf);
  const low = breaks.reduce((a, b) => (b < a ? b : a));
  const high = breaks.reduce((a, b) => (b > a ? b : a));
  const yb = linear([0, Math.max(1, Number(high - low))], [panels[0] + PANEL, panels[0]]);
  parts.push(axisLeft(yb, M.left, byteTicks(0, Number(high - low), 4).map((v) => ({ value: v, label: shortBytes(v) })), `program break − ${hex(low)}`, W - M.right));
  const breakLabels = placer(panels[0]);
  parts.push(seriesByPhase(phases, xs, (i) => yb(Number(breaks[i] - low)), COLORS.blue, 'break', breakLabels));
  for (const [y, content] of [[yb(Number(high - low)) + 4, `max ${hex(high)}`], [yb(0) + 4, `min ${hex(low)}`]] as const) {
    parts.push(text(W - M.right + 8, y, content, { class: 'break-label' }));
    breakLabels.block(textBox(W - M.right + 8, y, content));
  }
  // Every move gets a dot; the moves down (trims) get their size, once every dot is down.
  const moves = rows.flatMap((r, i) => {
    const prev = rows[i - 1];
    if (prev === undefined || prev.phase !== r.phase || breakOf(prev) === breakOf(r)) return [];
    return [{ x: xs[i], y: yb(Number(breaks[i] - low)), d: Number(breakOf(r) - breakOf(prev)) }];
  });
  for (const m of moves) {
    const r = m.d < 0 ? 3 : 1.5;
    parts.push(el('circle', { cx: m.x, cy: m.y, r, fill: COLORS.blue }));
    breakLabels.point(m.x, m.y, r);
  }
  for (const m of moves.filter((move) => move.d < 0)) {
    parts.push(breakLabels.place(spotsAround(m.x, m.y, 3, LABEL), `−${-m.d} B`, { class: 'move-label', ...HALO }));
  }

  // Panel 2: the resident set, where it was measured (the malloc_trim case).
  const rss = rows.map((r) => (r.kind === 'step' ? r.rssPages : undefined));
  const measured = rss.filter((v): v is number => v !== undefined);
  if (measured.length > 0) {
    const lo = Math.min(...measured);
    const hi = Math.max(...measured);
    const pad = Math.max(1, Math.round((hi - lo) * 0.1));
    const yr = linear([lo - pad, hi + pad], [panels[1] + PANEL, panels[1]]);
    parts.push(axisLeft(yr, M.left, niceTicks(lo - pad, hi + pad, 4).map((v) => ({ value: v, label: String(v) })), `resident set (pages of ${page} B)`, W - M.right));
    const rssLabels = placer(panels[1]);
    parts.push(seriesByPhase(phases, xs, (i) => (rss[i] === undefined ? undefined : yr(rss[i]!)), COLORS.green, 'rss', rssLabels));
    // Marks at one point (two trims in a row that left the RSS alone) share one label, in the order they ran.
    const marks: { x: number; pages: number; what: string[] }[] = [];
    rows.forEach((r, i) => {
      if (!isRssMark(rows, i)) return;
      const step = r as FreeStepRow;
      const what = step.op === 'trim' ? `trim(${step.pad === 0 ? 0 : shortBytes(step.pad ?? 0)})` : `after ${step.op}s`;
      const last = marks[marks.length - 1];
      if (last !== undefined && last.pages === step.rssPages && xs[i] - last.x < SAME_POINT) last.what.push(what);
      else marks.push({ x: xs[i], pages: step.rssPages!, what: [what] });
    });
    for (const m of marks) {
      parts.push(el('circle', { cx: m.x, cy: yr(m.pages), r: 3, fill: COLORS.green }));
      rssLabels.point(m.x, yr(m.pages), 3);
    }
    for (const m of marks) {
      parts.push(rssLabels.place(spotsAround(m.x, yr(m.pages), 3, LABEL), `${m.pages} ${m.what.join(', ')}`, { class: 'rss-label', ...HALO }));
    }
  } else {
    parts.push(text(M.left + 8, panels[1] + PANEL / 2, 'The resident set was not measured in this run.', { fill: '#555' }));
  }

  // Panel 3: bytes in mmapped chunks (mallinfo hblkhd), where the step recorded it.
  const mmapped = rows.map((r) => (r.kind === 'step' ? r.mmappedBytes : undefined));
  const known = mmapped.filter((v): v is number => v !== undefined);
  const mhi = Math.max(1, ...known);
  const ym = linear([0, mhi], [panels[2] + PANEL, panels[2]]);
  parts.push(axisLeft(ym, M.left, byteTicks(0, mhi, 4).map((v) => ({ value: v, label: shortBytes(v) })), 'bytes in mmapped chunks (mallinfo hblkhd)', W - M.right));
  const mmapLabels = placer(panels[2]);
  parts.push(seriesByPhase(phases, xs, (i) => (mmapped[i] === undefined ? undefined : ym(mmapped[i]!)), COLORS.red, 'mmapped', mmapLabels));
  rows.forEach((r, i) => {
    const prev = rows[i - 1];
    if (r.kind !== 'step' || prev?.kind !== 'step' || prev.mmappedBytes === r.mmappedBytes || prev.phase !== r.phase) return;
    parts.push(mmapLabels.place(spotsAround(xs[i], ym(r.mmappedBytes), 0, LABEL), `${r.mmappedBytes} B after ${r.op}`, { class: 'mmap-label', ...HALO }));
  });
  // The x axis: the first step of each case, numbered as in the table.
  parts.push(line(M.left, bottom, W - M.right, bottom));
  phases.forEach((p) => parts.push(line(xs[p.from], bottom, xs[p.from], bottom + 4), text(xs[p.from], bottom + 15, String(p.from + 1), { 'text-anchor': 'middle' })));
  parts.push(text((M.left + W - M.right) / 2, bottom + 34, 'steps in the order they ran (each case has its own plan)', { 'text-anchor': 'middle', 'font-weight': 'bold' }));
  return svgDocument(W, bottom + 46, `${result.question} The break, the resident set and mmapped bytes after each of ${rows.length} steps`, parts.join(''));
}

/**
 * One line per phase through the points that have a value (phases are
 * separate plans: no line between them), drawn, and told to the panel's
 * labels so that they keep off it where they can.
 */
function seriesByPhase(
  phases: readonly { from: number; to: number }[], xs: readonly number[], yOf: (i: number) => number | undefined, color: string, name: string,
  labels: LabelPlacer,
): string {
  return phases.map((p) => {
    const pts: [number, number][] = [];
    for (let i = p.from; i <= p.to; i++) {
      const v = yOf(i);
      if (v !== undefined) pts.push([xs[i], v]);
    }
    if (pts.length === 0) return '';
    // A lone point still shows as a short tick.
    if (pts.length === 1) pts.push([pts[0][0] + 2, pts[0][1]]);
    labels.line(pts);
    return path(polyline(pts), { stroke: color, 'stroke-width': 2, class: `series ${name}` });
  }).join('');
}
