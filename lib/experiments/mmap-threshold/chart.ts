// The threshold sweep: every probe's chunk size in the order it ran, heap or
// mmapped, with the threshold bracket each phase located.
import { COLORS, Figure, HALO, Labels, Mark, Point } from '../../chart-model';
import { axisBottom, axisLeft, circle, cross, legend, line, linear, log2, rect, text } from '../../figure-build';
import { shortBytes } from '../../format';
import { phaseRuns } from '../../phases';
import { ResultData } from '../../result-data';
import { MmapThresholdRow, ServedBy, ThresholdPhase } from './index';
import { bracketOf } from './prober';
import { probeRows } from './table';

const W = 760;
const H = 470;
const M = { left: 78, right: 20, top: 80, bottom: 56 };

const SERVED: Record<ServedBy, { color: string; label: string }> = {
  mmap: { color: COLORS.red, label: 'mmapped' },
  brk: { color: COLORS.blue, label: 'heap, grew the break' },
  top: { color: COLORS.teal, label: 'heap, from the top chunk' },
  'free chunk': { color: COLORS.green, label: 'heap, from a free chunk' },
};

/** What each phase did to the threshold, for its band's title. */
const PHASE: Record<ThresholdPhase | 'trim', string> = {
  start: 'start',
  sweep: 'sweep',
  'after-sweep': 'after sweep',
  rise: 'free 1 MiB+',
  'cap-64MiB': 'free 64 MiB',
  'cap-32MiB': 'free 32 MiB',
  'cap-below-32MiB': 'free <32 MiB',
  mallopt: 'mallopt',
  trim: 'trim',
};

/** The upper bound of a phase's bracket as the chart labels it: `≤ 462848`. */
export function bracketLabel(hi: number): string {
  return `≤ ${hi}`;
}

/** Half the drawn size of a probe's mark, stroke included: circles of radius 3.5, crosses of 8 px. */
const MARK_RADIUS = { circle: 4.5, cross: 5.5 };

export function mmapThresholdChart(result: ResultData<MmapThresholdRow>): Figure | undefined {
  const probes = probeRows(result.rows);
  if (probes.length === 0) return undefined;
  const sizes = probes.map((r) => r.chunkSize);
  const lo = 2 ** Math.floor(Math.log2(Math.min(...sizes)));
  const hi = 2 ** Math.ceil(Math.log2(Math.max(...sizes)));
  const step = (W - M.left - M.right) / probes.length;
  const cx = (i: number) => M.left + step * (i + 0.5);
  const y = log2([lo, hi], [H - M.bottom, M.top]);
  const yTicks = [];
  for (let v = lo; v <= hi; v *= 2) yTicks.push({ value: v, label: shortBytes(v) });
  const xScale = linear([0, probes.length], [M.left, W - M.right]);
  const xTicks = [0, ...Array.from({ length: Math.floor(probes.length / 20) }, (_, k) => (k + 1) * 20)]
    .filter((v) => v < probes.length).map((v) => ({ value: v + 0.5, label: String(v + 1) }));

  const marks: Mark[] = [axisLeft(y, M.left, yTicks, 'chunk size (log scale)', W - M.right, true)];
  // Threshold labels stay in the plot and off every probe's mark, drawn on top of every line and mark.
  const thresholds: Point[][] = [];
  const labels: Labels = {
    mark: 'labels', fontSize: 11, bounds: { x0: M.left, y0: M.top, x1: W, y1: H - M.bottom },
    avoid: { points: probes.map((r, i) => ({ x: cx(i), y: y(r.chunkSize), r: r.role === 'source' ? MARK_RADIUS.cross : MARK_RADIUS.circle })), lines: thresholds },
    labels: [],
  };

  // Phase bands, alternating shade, titled above the plot.
  const phases = phaseRuns(probes);
  phases.forEach((p, k) => {
    const x0 = M.left + step * p.from;
    const x1 = M.left + step * (p.to + 1);
    if (k % 2 === 0) marks.push(rect(x0, M.top, x1 - x0, H - M.bottom - M.top, { fill: '#f3f3f3' }));
    marks.push(text((x0 + x1) / 2, M.top - 6 - (k % 2) * 12, PHASE[p.phase], { 'text-anchor': 'middle', class: 'phase-label', fill: '#555' }));
    const b = bracketOf(result.rows, p.phase);
    const before = k > 0 ? bracketOf(result.rows, phases[k - 1].phase) : undefined;
    if (b.hi !== undefined && b.hi >= lo && b.hi <= hi) {
      // The threshold the phase located: a chunk of this size or more was mmapped, one of b.lo or less grew the break.
      const by = y(b.hi);
      marks.push(line(x0, by, x1, by, { stroke: '#222', 'stroke-width': 2, class: 'threshold' }));
      thresholds.push([[x0, by], [x1, by]]);
      // A bracket the phase before also found is labelled once.
      if (before?.hi !== b.hi) labels.labels.push({ along: { x0, x1, y: by }, text: bracketLabel(b.hi), attrs: { class: 'threshold-label', 'font-weight': 'bold', ...HALO } });
    }
  });
  marks.push(axisBottom(xScale, H - M.bottom, xTicks, 'probes in the order they ran'));

  probes.forEach((r, i) => {
    const color = SERVED[r.servedBy].color;
    const cy = y(r.chunkSize);
    // Sources (freed to move the threshold) are crosses; eaters (which only take the top) hollow.
    if (r.role === 'source') {
      marks.push(cross(cx(i), cy, 4, { stroke: color, 'stroke-width': 2.5, class: 'probe source' }));
    } else {
      marks.push(circle(cx(i), cy, 3.5, {
        class: `probe ${r.role}`, fill: r.role === 'eater' ? 'none' : color, stroke: color, 'stroke-width': 1.5,
      }));
    }
  });
  marks.push(labels);
  const present = (Object.keys(SERVED) as ServedBy[]).filter((s) => probes.some((r) => r.servedBy === s));
  marks.push(legend(M.left, 16, [
    ...present.map((s) => ({ label: SERVED[s].label, color: SERVED[s].color, box: true })),
    { label: 'threshold located (≤ chunk size)', color: '#222' },
  ]));
  marks.push(text(M.left, 32, '● probe (kept allocated)   ✕ freed on purpose to move the threshold   ○ eater (takes the top chunk)', { fill: '#555' }));
  return { width: W, height: H, title: `${result.question} ${probes.length} probes by chunk size, heap or mmapped, and the threshold each phase located`, marks };
}
