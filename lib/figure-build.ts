// What an experiment's chart.ts lays its figure out with: scales from data
// to px, round tick values, and a constructor per mark (lib/chart-model.ts).
// Pure arithmetic: how a mark looks is the view's (lib/views/charts/figure.ts).
import type { Attrs, Axis, LegendEntry, Mark, Point } from './chart-model';

export interface Scale {
  (value: number): number;
  domain: [number, number];
  range: [number, number];
}

export function linear(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  const s = ((v: number) => r0 + ((v - d0) / span) * (r1 - r0)) as Scale;
  s.domain = domain;
  s.range = range;
  return s;
}

/** Log base 2: chunk sizes from pages to tens of MiB. */
export function log2(domain: [number, number], range: [number, number]): Scale {
  const inner = linear([Math.log2(domain[0]), Math.log2(domain[1])], range);
  const s = ((v: number) => inner(Math.log2(Math.max(v, domain[0] / 2)))) as Scale;
  s.domain = domain;
  s.range = range;
  return s;
}

/** About `count` round tick values (1, 2 or 5 × a power of ten) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

/** Round tick values in bytes: powers of two × 1, 2 or 5 of a binary unit, so that labels read 256 KiB, 1 MiB. */
export function byteTicks(lo: number, hi: number, count = 6): number[] {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  let step = 1;
  while (step < raw) step *= 2;
  if (step / 2 >= raw * 0.75) step /= 2;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

export interface Tick {
  value: number;
  label: string;
}

const placed = (scale: Scale, ticks: readonly Tick[]) => ticks.map((t) => ({ at: scale(t.value), label: t.label }));

/** A y axis at x, its ticks on `scale`, grid lines across to `gridTo`; the title above it, or turned beside it. */
export function axisLeft(scale: Scale, x: number, ticks: readonly Tick[], title: string, gridTo?: number, titleAside?: boolean): Axis {
  return { mark: 'axis', side: 'left', at: x, range: scale.range, ticks: placed(scale, ticks), title, gridTo, titleAside };
}

/** An x axis at y, its ticks on `scale`, the title centred below. */
export function axisBottom(scale: Scale, y: number, ticks: readonly Tick[], title: string): Axis {
  return { mark: 'axis', side: 'bottom', at: y, range: scale.range, ticks: placed(scale, ticks), title };
}

export const rect = (x: number, y: number, width: number, height: number, attrs?: Attrs): Mark => ({ mark: 'rect', x, y, width, height, attrs });
export const line = (x1: number, y1: number, x2: number, y2: number, attrs?: Attrs): Mark => ({ mark: 'line', x1, y1, x2, y2, attrs });
export const polyline = (points: Point[], attrs?: Attrs): Mark => ({ mark: 'polyline', points, attrs });
export const steps = (points: Point[], attrs?: Attrs): Mark => ({ mark: 'steps', points, attrs });
export const circle = (x: number, y: number, r: number, attrs?: Attrs): Mark => ({ mark: 'circle', x, y, r, attrs });
export const cross = (x: number, y: number, size: number, attrs?: Attrs): Mark => ({ mark: 'cross', x, y, size, attrs });
export const zigzag = (x0: number, x1: number, y: number, attrs?: Attrs): Mark => ({ mark: 'zigzag', x0, x1, y, attrs });
export const text = (x: number, y: number, content: string, attrs?: Attrs): Mark => ({ mark: 'text', x, y, text: content, attrs });
export const legend = (x: number, y: number, entries: LegendEntry[]): Mark => ({ mark: 'legend', x, y, entries });
