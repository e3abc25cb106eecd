// SVG primitives for the charts: escaping, elements, scales, axes. Styling
// is in attributes, not CSS, so that a chart saved on its own looks the same
// as inline in a page.

/** Text and attribute values for XML: the five characters that must not appear raw. */
export function esc(value: string | number | bigint): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export type Attrs = Record<string, string | number | undefined>;

function attrs(a: Attrs): string {
  return Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${esc(typeof v === 'number' ? round(v) : v!)}"`)
    .join('');
}

/** Coordinates to 0.1 px: shorter documents, no float noise. */
export function round(n: number): number {
  return Math.round(n * 10) / 10;
}

/** An element; `children` is markup already escaped. */
export function el(name: string, a: Attrs = {}, children?: string): string {
  return children === undefined ? `<${name}${attrs(a)}/>` : `<${name}${attrs(a)}>${children}</${name}>`;
}

export function text(x: number, y: number, content: string, a: Attrs = {}): string {
  return el('text', { x, y, ...a }, esc(content));
}

export function line(x1: number, y1: number, x2: number, y2: number, a: Attrs = {}): string {
  return el('line', { x1, y1, x2, y2, stroke: '#333', ...a });
}

export function rect(x: number, y: number, width: number, height: number, a: Attrs = {}): string {
  return el('rect', { x, y, width: Math.max(0, width), height: Math.max(0, height), ...a });
}

export function path(d: string, a: Attrs = {}): string {
  return el('path', { d, fill: 'none', stroke: '#333', ...a });
}

/** A path through points, as straight segments. */
export function polyline(points: readonly [number, number][]): string {
  return points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${round(x)} ${round(y)}`).join(' ');
}

/** A step path: horizontal to each new x, then vertical to its y. */
export function steps(points: readonly [number, number][]): string {
  return points.map(([x, y], i) => (i === 0 ? `M${round(x)} ${round(y)}` : `H${round(x)} V${round(y)}`)).join(' ');
}

export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';

/** A standalone SVG document that is also valid inline in HTML. */
export function svgDocument(width: number, height: number, title: string, body: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `role="img" font-family="${esc(FONT)}" font-size="11" fill="#222">` +
    `<title>${esc(title)}</title>${rect(0, 0, width, height, { fill: '#fff' })}${body}</svg>`
  );
}

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

/** An x axis at `y`: the line, tick marks, tick labels and the axis title (with its unit) centred below. */
export function axisBottom(scale: Scale, y: number, ticks: readonly Tick[], title: string): string {
  const [x0, x1] = scale.range;
  const parts = [line(x0, y, x1, y)];
  for (const t of ticks) {
    const x = scale(t.value);
    parts.push(line(x, y, x, y + 4), text(x, y + 15, t.label, { 'text-anchor': 'middle' }));
  }
  parts.push(text((x0 + x1) / 2, y + 32, title, { 'text-anchor': 'middle', 'font-weight': 'bold' }));
  return el('g', { class: 'axis x' }, parts.join(''));
}

/** A y axis at `x`: the line, ticks, labels, light grid lines across to `gridTo`, and the title above. */
export function axisLeft(scale: Scale, x: number, ticks: readonly Tick[], title: string, gridTo?: number, titleAside = false): string {
  const [y0, y1] = scale.range;
  const parts = [line(x, y0, x, y1)];
  for (const t of ticks) {
    const y = scale(t.value);
    if (gridTo !== undefined) parts.push(line(x, y, gridTo, y, { stroke: '#e4e4e4' }));
    parts.push(line(x - 4, y, x, y), text(x - 6, y + 4, t.label, { 'text-anchor': 'end' }));
  }
  if (titleAside) {
    const cy = (y0 + y1) / 2;
    parts.push(text(14, cy, title, { 'text-anchor': 'middle', 'font-weight': 'bold', transform: `rotate(-90 14 ${round(cy)})` }));
  } else {
    parts.push(text(x, Math.min(y0, y1) - 10, title, { 'text-anchor': 'start', 'font-weight': 'bold' }));
  }
  return el('g', { class: 'axis y' }, parts.join(''));
}

/** A legend row: a swatch (line or box) and its label per entry, left to right from (x, y). */
export function legend(x: number, y: number, entries: readonly { label: string; color: string; dash?: string; box?: boolean }[]): string {
  let at = x;
  const parts: string[] = [];
  for (const e of entries) {
    parts.push(
      e.box
        ? rect(at, y - 8, 12, 10, { fill: e.color })
        : line(at, y - 3, at + 18, y - 3, { stroke: e.color, 'stroke-width': 2.5, 'stroke-dasharray': e.dash }),
      text(at + 22, y, e.label),
    );
    at += 34 + textWidth(e.label);
  }
  return el('g', { class: 'legend' }, parts.join(''));
}

/** Runs of rows of one phase, by index (`to` inclusive), in the order they ran: where the charts' phase bands (and the terminal's phase marks) go. */
export function phaseRuns<P>(rows: readonly { phase: P }[]): { phase: P; from: number; to: number }[] {
  const runs: { phase: P; from: number; to: number }[] = [];
  rows.forEach((r, i) => {
    const last = runs[runs.length - 1];
    if (last !== undefined && last.phase === r.phase) last.to = i;
    else runs.push({ phase: r.phase, from: i, to: i });
  });
  return runs;
}

/** A white outline under a label, so that it stays readable over lines and points. */
export const HALO: Attrs = { stroke: '#fff', 'stroke-width': 3, 'paint-order': 'stroke', 'stroke-linejoin': 'round' };

/** Colours that stay apart for colour-blind readers (Tableau 10). */
export const COLORS = {
  blue: '#4e79a7',
  orange: '#f28e2b',
  red: '#e15759',
  teal: '#76b7b2',
  green: '#59a14f',
  yellow: '#edc948',
  purple: '#b07aa1',
  pink: '#ff9da7',
  brown: '#9c755f',
  grey: '#8c8c8c',
} as const;

/** A rough text width at font size 11 (the charts' default), enough to keep labels apart. */
export function textWidth(content: string, fontSize = 11): number {
  return content.length * fontSize * 0.62;
}

/**
 * Places labels so that they do not overlap: each is tried at its wanted
 * height, then moved up and down in whole lines until it fits.
 */
export class LabelPlacer {
  private readonly boxes: { x0: number; x1: number; y0: number; y1: number }[] = [];

  constructor(private readonly fontSize = 11) {}

  /** Marks an area (a legend, a title) that labels must avoid. */
  block(x0: number, y0: number, x1: number, y1: number): void {
    this.boxes.push({ x0, x1, y0, y1 });
  }

  /** The label as a text element at the first free height near `y` (its baseline). */
  place(x: number, y: number, content: string, a: Attrs = {}): string {
    const w = textWidth(content, this.fontSize);
    const anchor = a['text-anchor'];
    const x0 = anchor === 'end' ? x - w : anchor === 'middle' ? x - w / 2 : x;
    const line = this.fontSize + 2;
    let at = y;
    for (const k of [0, -1, 1, -2, 2, -3, 3, -4, 4]) {
      at = y + k * line;
      const box = { x0, x1: x0 + w, y0: at - this.fontSize, y1: at + 2 };
      if (!this.boxes.some((b) => b.x0 < box.x1 && box.x0 < b.x1 && b.y0 < box.y1 && box.y0 < b.y1)) break;
    }
    this.boxes.push({ x0, x1: x0 + w, y0: at - this.fontSize, y1: at + 2 });
    return text(x, at, content, { 'font-size': this.fontSize === 11 ? undefined : this.fontSize, ...a });
  }
}
