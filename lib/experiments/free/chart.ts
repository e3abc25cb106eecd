// The free/trim timeline: the program break, the resident set and mmapped
// bytes after every step of the four cases, side by side.
import { COLORS, Figure, HALO, Labels, Mark, Point } from '../../chart-model';
import { axisLeft, byteTicks, circle, line, linear, niceTicks, polyline, rect, text } from '../../figure-build';
import { hex, shortBytes } from '../../format';
import { phaseRuns } from '../../phases';
import { ResultData } from '../../result-data';
import { FreeRow, FreeStepRow } from './index';
import { breakOf, isRssMark } from './table';

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

export function freeChart(result: ResultData<FreeRow>): Figure | undefined {
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

  const marks: Mark[] = [];
  const panels = [M.top + 14, M.top + 14 + PANEL + GAP, M.top + 14 + 2 * (PANEL + GAP)];
  // Each panel's labels stay inside it (the right margin included) and off its points and other text.
  const labelsIn = (top: number): Labels => ({ mark: 'labels', fontSize: LABEL, bounds: { x0: M.left, y0: top, x1: W, y1: top + PANEL }, avoid: {}, labels: [] });
  const bottom = panels[2] + PANEL;
  phases.forEach((p, k) => {
    const x0 = starts[k];
    const x1 = x0 + (shares[k] / total) * width;
    if (k % 2 === 0) marks.push(rect(x0, M.top, x1 - x0, bottom - M.top, { fill: '#f3f3f3' }));
    // Alternate heights: a narrow phase's title may be wider than its band.
    marks.push(text((x0 + x1) / 2, 14 + (k % 2) * 14, `${PHASE[p.phase]} (${p.to - p.from + 1} steps)`, { 'text-anchor': 'middle', class: 'phase-label', fill: '#555' }));
  });

  // Panel 1: the break, relative to the lowest break seen.
  const breaks = rows.map(breakOf);
  const low = breaks.reduce((a, b) => (b < a ? b : a));
  const high = breaks.reduce((a, b) => (b > a ? b : a));
  const yb = linear([0, Math.max(1, Number(high - low))], [panels[0] + PANEL, panels[0]]);
  marks.push(axisLeft(yb, M.left, byteTicks(0, Number(high - low), 4).map((v) => ({ value: v, label: shortBytes(v) })), `program break − ${hex(low)}`, W - M.right));
  const breakLabels = labelsIn(panels[0]);
  marks.push(...seriesByPhase(phases, xs, (i) => yb(Number(breaks[i] - low)), COLORS.blue, 'break', breakLabels));
  const extremes = [{ x: W - M.right + 8, y: yb(Number(high - low)) + 4, text: `max ${hex(high)}` }, { x: W - M.right + 8, y: yb(0) + 4, text: `min ${hex(low)}` }];
  for (const t of extremes) marks.push(text(t.x, t.y, t.text, { class: 'break-label' }));
  breakLabels.avoid.texts = extremes;
  // Every move gets a dot; the moves down (trims) get their size, once every dot is down.
  const moves = rows.flatMap((r, i) => {
    const prev = rows[i - 1];
    if (prev === undefined || prev.phase !== r.phase || breakOf(prev) === breakOf(r)) return [];
    const d = Number(breakOf(r) - breakOf(prev));
    return [{ x: xs[i], y: yb(Number(breaks[i] - low)), r: d < 0 ? 3 : 1.5, d, i }];
  });
  for (const m of moves) marks.push(circle(m.x, m.y, m.r, { fill: COLORS.blue }));
  breakLabels.avoid.points = moves;
  // Trims of one size step after step (every free into a top above the trim
  // threshold gives a page back) share one label, at the first: hundreds of
  // them have no room for a label each. (Moves at rows next to each other
  // are of one phase: a move is a change from the row before in its phase.)
  const runs: { first: (typeof moves)[number]; count: number }[] = [];
  for (const m of moves.filter((move) => move.d < 0)) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.first.d === m.d && last.first.i + last.count === m.i) last.count++;
    else runs.push({ first: m, count: 1 });
  }
  breakLabels.labels = runs.map(({ first, count }) => ({
    around: { x: first.x, y: first.y, r: 3 }, text: count === 1 ? `−${-first.d} B` : `−${-first.d} B × ${count}`, attrs: { class: 'move-label', ...HALO },
  }));
  marks.push(breakLabels);

  // Panel 2: the resident set, where it was measured (the malloc_trim case).
  const rss = rows.map((r) => (r.kind === 'step' ? r.rssPages : undefined));
  const measured = rss.filter((v): v is number => v !== undefined);
  if (measured.length > 0) {
    const lo = Math.min(...measured);
    const hi = Math.max(...measured);
    const pad = Math.max(1, Math.round((hi - lo) * 0.1));
    const yr = linear([lo - pad, hi + pad], [panels[1] + PANEL, panels[1]]);
    marks.push(axisLeft(yr, M.left, niceTicks(lo - pad, hi + pad, 4).map((v) => ({ value: v, label: String(v) })), `resident set (pages of ${page} B)`, W - M.right));
    const rssLabels = labelsIn(panels[1]);
    marks.push(...seriesByPhase(phases, xs, (i) => (rss[i] === undefined ? undefined : yr(rss[i]!)), COLORS.green, 'rss', rssLabels));
    // Marks at one point (two trims in a row that left the RSS alone) share one label, in the order they ran.
    const shown: { x: number; pages: number; what: string[] }[] = [];
    rows.forEach((r, i) => {
      if (!isRssMark(rows, i)) return;
      const step = r as FreeStepRow;
      const what = step.op === 'trim' ? `trim(${step.pad === 0 ? 0 : shortBytes(step.pad ?? 0)})` : `after ${step.op}s`;
      const last = shown[shown.length - 1];
      if (last !== undefined && last.pages === step.rssPages && xs[i] - last.x < SAME_POINT) last.what.push(what);
      else shown.push({ x: xs[i], pages: step.rssPages!, what: [what] });
    });
    const dots = shown.map((m) => ({ x: m.x, y: yr(m.pages), r: 3 }));
    for (const d of dots) marks.push(circle(d.x, d.y, d.r, { fill: COLORS.green }));
    rssLabels.avoid.points = dots;
    rssLabels.labels = shown.map((m, k) => ({ around: dots[k], text: `${m.pages} ${m.what.join(', ')}`, attrs: { class: 'rss-label', ...HALO } }));
    marks.push(rssLabels);
  } else {
    marks.push(text(M.left + 8, panels[1] + PANEL / 2, 'The resident set was not measured in this run.', { fill: '#555' }));
  }

  // Panel 3: bytes in mmapped chunks (mallinfo hblkhd), where the step recorded it.
  const mmapped = rows.map((r) => (r.kind === 'step' ? r.mmappedBytes : undefined));
  const known = mmapped.filter((v): v is number => v !== undefined);
  const mhi = Math.max(1, ...known);
  const ym = linear([0, mhi], [panels[2] + PANEL, panels[2]]);
  marks.push(axisLeft(ym, M.left, byteTicks(0, mhi, 4).map((v) => ({ value: v, label: shortBytes(v) })), 'bytes in mmapped chunks (mallinfo hblkhd)', W - M.right));
  const mmapLabels = labelsIn(panels[2]);
  marks.push(...seriesByPhase(phases, xs, (i) => (mmapped[i] === undefined ? undefined : ym(mmapped[i]!)), COLORS.red, 'mmapped', mmapLabels));
  mmapLabels.labels = rows.flatMap((r, i) => {
    const prev = rows[i - 1];
    if (r.kind !== 'step' || prev?.kind !== 'step' || prev.mmappedBytes === r.mmappedBytes || prev.phase !== r.phase) return [];
    return [{ around: { x: xs[i], y: ym(r.mmappedBytes), r: 0 }, text: `${r.mmappedBytes} B after ${r.op}`, attrs: { class: 'mmap-label', ...HALO } }];
  });
  marks.push(mmapLabels);
  // The x axis: the first step of each case, numbered as in the table.
  marks.push(line(M.left, bottom, W - M.right, bottom));
  phases.forEach((p) => marks.push(line(xs[p.from], bottom, xs[p.from], bottom + 4), text(xs[p.from], bottom + 15, String(p.from + 1), { 'text-anchor': 'middle' })));
  marks.push(text((M.left + W - M.right) / 2, bottom + 34, 'steps in the order they ran (each case has its own plan)', { 'text-anchor': 'middle', 'font-weight': 'bold' }));
  return { width: W, height: bottom + 46, title: `${result.question} The break, the resident set and mmapped bytes after each of ${rows.length} steps`, marks };
}

/**
 * One line per phase through the points that have a value (phases are
 * separate plans: no line between them), each also a line the panel's
 * labels keep off where they can.
 */
function seriesByPhase(
  phases: readonly { from: number; to: number }[], xs: readonly number[], yOf: (i: number) => number | undefined, color: string, name: string,
  labels: Labels,
): Mark[] {
  return phases.flatMap((p) => {
    const pts: Point[] = [];
    for (let i = p.from; i <= p.to; i++) {
      const v = yOf(i);
      if (v !== undefined) pts.push([xs[i], v]);
    }
    if (pts.length === 0) return [];
    // A lone point still shows as a short tick.
    if (pts.length === 1) pts.push([pts[0][0] + 2, pts[0][1]]);
    (labels.avoid.lines ??= []).push(pts);
    return [polyline(pts, { stroke: color, 'stroke-width': 2, class: `series ${name}` })];
  });
}
