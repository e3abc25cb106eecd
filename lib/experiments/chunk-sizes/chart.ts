// The chunk-size staircase: request → chunk size and usable size, byte by byte.
import { COLORS, Figure, HALO, Mark, Point } from '../../chart-model';
import { axisBottom, axisLeft, circle, legend, line, linear, steps, text } from '../../figure-build';
import { span } from '../../format';
import { ResultData } from '../../result-data';
import { ChunkSizeRow } from './index';
import { stairs } from './measure';
import { staircaseRows } from './table';

const W = 720;
const H = 440;
const M = { left: 64, right: 24, top: 44, bottom: 56 };
/** How many stairs get a label, from the bottom; the last stair gets one too. */
const LABELLED = 3;

/** `0–24 B → 32-byte chunk, 24 usable`: the label of one stair. */
export function stairLabel(s: { from: number; to: number; chunkSize: number }, usable: number): string {
  return `${span(s.from, s.to)} B → ${s.chunkSize}-byte chunk, ${usable} usable`;
}

export function chunkSizesChart(result: ResultData<ChunkSizeRow>): Figure | undefined {
  const rows = staircaseRows(result.rows);
  if (rows.length < 2) return undefined;
  const maxRequest = rows[rows.length - 1].request;
  const maxSize = Math.max(...rows.map((r) => Math.max(r.chunkSize, r.usableSize)));
  const x = linear([0, maxRequest], [M.left, W - M.right]);
  const y = linear([0, maxSize], [H - M.bottom, M.top]);
  const tickStep = maxRequest >= 512 ? 128 : 32;
  const xTicks = [];
  for (let v = 0; v <= maxRequest; v += tickStep) xTicks.push({ value: v, label: String(v) });
  const yTicks = [];
  for (let v = 0; v <= maxSize; v += tickStep) yTicks.push({ value: v, label: String(v) });

  // Each request n covers [n, n + 1) on the x axis.
  const stair = (size: (r: ChunkSizeRow) => number) =>
    [...rows.map((r): Point => [x(r.request), y(size(r))]), [x(maxRequest + 1), y(size(rows[rows.length - 1]))] as Point];
  const marks: Mark[] = [
    axisLeft(y, M.left, yTicks, 'bytes', W - M.right),
    axisBottom(x, H - M.bottom, xTicks, 'malloc(n): requested bytes n'),
    line(x(0), y(0), x(maxRequest), y(maxRequest), { stroke: COLORS.grey, 'stroke-dasharray': '4 3' }),
    steps(stair((r) => r.chunkSize), { stroke: COLORS.blue, 'stroke-width': 2, class: 'series chunk-size' }),
    steps(stair((r) => r.usableSize), { stroke: COLORS.orange, 'stroke-width': 1.5, class: 'series usable-size' }),
    legend(M.left + 8, M.top - 22, [
      { label: 'chunk size', color: COLORS.blue },
      { label: 'usable size (malloc_usable_size)', color: COLORS.orange },
      { label: 'requested (n)', color: COLORS.grey, dash: '4 3' },
    ]),
  ];

  const all = stairs(rows);
  const labelled = [...all.slice(0, LABELLED), all[all.length - 1]].filter((s, i, a) => a.indexOf(s) === i);
  // The first stairs' labels sit in the empty corner above the staircase, each with a line to its stair; the last one beside it.
  labelled.forEach((s, i) => {
    const px = x((s.from + s.to + 1) / 2);
    const py = y(s.chunkSize);
    const label = stairLabel(s, rows[s.from].usableSize);
    marks.push(circle(px, py, 3, { fill: COLORS.blue }));
    if (i < LABELLED) {
      const lx = M.left + 30;
      const ly = y(maxSize * 0.45) + i * 16;
      marks.push(line(lx - 2, ly - 4, px, py, { stroke: '#aaa' }), text(lx, ly, label, { class: 'stair-label', ...HALO }));
    } else {
      marks.push(text(px - 8, py - 4, label, { 'text-anchor': 'end', class: 'stair-label', ...HALO }));
    }
  });
  return { width: W, height: H, title: `${result.question} Chunk size and usable size for every request from 0 to ${maxRequest} bytes`, marks };
}
