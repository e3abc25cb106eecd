// Heap growth: the program break against the bytes requested and still live.
import { COLORS, Figure, HALO, Mark, Point } from '../../chart-model';
import { axisBottom, axisLeft, byteTicks, circle, legend, line, linear, steps, text } from '../../figure-build';
import { hex, shortBytes, signedBytes } from '../../format';
import { ResultData } from '../../result-data';
import { HeapGrowthRow } from './index';

const W = 720;
const H = 440;
const M = { left: 76, right: 150, top: 44, bottom: 56 };
const MAX_DOTS = 80;

/** `+132 KiB at malloc 380`: how one break step is labelled. */
export function breakStepLabel(r: HeapGrowthRow): string {
  return `${signedBytes(Number(r.breakAfter - r.breakBefore))} at ${r.op} ${r.n}`;
}

export function heapGrowthChart(result: ResultData<HeapGrowthRow>): Figure | undefined {
  const rows = result.rows;
  const mallocs = rows.filter((r) => r.op === 'malloc');
  const frees = rows.filter((r) => r.op === 'free');
  if (mallocs.length === 0) return undefined;
  const start = mallocs[0].breakBefore;
  const rel = (b: bigint) => Number(b - start);
  const breaks = rows.flatMap((r) => [rel(r.breakBefore), rel(r.breakAfter)]);
  const lo0 = Math.min(0, ...breaks);
  const hi = Math.max(...breaks, 1);
  // Room below the lowest break for its label.
  const lo = lo0 - (hi - lo0) * 0.04;
  const maxRequested = Math.max(...rows.map((r) => r.requested));
  const x = linear([0, maxRequested], [M.left, W - M.right]);
  const y = linear([lo, hi], [H - M.bottom, M.top]);
  const xTicks = byteTicks(0, maxRequested, 6).map((v) => ({ value: v, label: shortBytes(v) }));
  const yTicks = byteTicks(lo, hi, 7).map((v) => ({ value: v, label: shortBytes(v) }));

  // A step path through the break after each row, keeping only the corners.
  const corners = (list: readonly HeapGrowthRow[], from: number): Point[] => {
    const pts: Point[] = [[x(from), y(rel(list[0].breakBefore))]];
    list.forEach((r, i) => {
      const next = list[i + 1];
      if (r.breakAfter !== r.breakBefore || next === undefined) pts.push([x(r.requested), y(rel(r.breakAfter))]);
    });
    return pts;
  };
  const marks: Mark[] = [
    axisLeft(y, M.left, yTicks, `break − ${hex(start)} (bytes)`, W - M.right),
    axisBottom(x, H - M.bottom, xTicks, `bytes requested and still live (${mallocs.length} × malloc(${mallocs[0].size}), then freed oldest first)`),
    steps(corners(mallocs, 0), { stroke: COLORS.blue, 'stroke-width': 2, class: 'series mallocs' }),
  ];
  if (frees.length > 0) {
    marks.push(steps(corners(frees, mallocs[mallocs.length - 1].requested), {
      stroke: COLORS.red, 'stroke-width': 2, 'stroke-dasharray': '6 4', class: 'series frees',
    }));
  }
  marks.push(legend(M.left + 8, M.top - 22, [
    { label: 'break while allocating', color: COLORS.blue },
    ...(frees.length > 0 ? [{ label: 'break while freeing', color: COLORS.red, dash: '6 4' }] : []),
  ]));

  // Every step gets a dot; the first and the trims get a label, and the right margin names the breaks.
  const moves = rows.filter((r) => r.breakAfter !== r.breakBefore);
  // Dots only while they stay apart: with no top pad the break moves every few requests.
  for (const r of moves.length <= MAX_DOTS ? moves : []) {
    marks.push(circle(x(r.requested), y(rel(r.breakAfter)), 2.5, { fill: r.op === 'malloc' ? COLORS.blue : COLORS.red }));
  }
  const firstGrowth = moves.find((r) => r.op === 'malloc');
  if (firstGrowth !== undefined) {
    // Above the start of the staircase, where nothing is drawn, with a line to its step.
    const px = x(firstGrowth.requested);
    const py = y(rel(firstGrowth.breakAfter));
    marks.push(
      line(M.left + 24, py - 68, px, py, { stroke: '#aaa' }),
      text(M.left + 12, py - 72, `first step: ${breakStepLabel(firstGrowth)}`, { class: 'step-label', ...HALO }),
    );
  }
  for (const r of moves.filter((m) => m.op === 'free')) {
    const mid = (y(rel(r.breakBefore)) + y(rel(r.breakAfter))) / 2;
    marks.push(text(x(r.requested) + 8, mid, breakStepLabel(r), { class: 'step-label', fill: COLORS.red, ...HALO }));
  }
  const peak = mallocs[mallocs.length - 1].breakAfter;
  const named: [string, bigint][] = [['start', start], ['peak', peak]];
  if (frees.length > 0) named.push(['after the frees', frees[frees.length - 1].breakAfter]);
  let lastY = -Infinity;
  for (const [name, b] of [...named].sort((a, c) => (a[1] > c[1] ? -1 : 1))) {
    const py = Math.max(y(rel(b)) + 4, lastY + 26);
    lastY = py;
    marks.push(
      text(W - M.right + 8, py - 9, `${name}:`, { class: 'break-label', fill: '#555' }),
      text(W - M.right + 8, py + 3, hex(b), { class: 'break-label' }),
    );
  }
  const growth = moves.filter((r) => r.op === 'malloc').length;
  return { width: W, height: H, title: `${result.question} The program break climbed in ${growth} steps`, marks };
}
