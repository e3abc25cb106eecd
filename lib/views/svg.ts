// SVG primitives for the charts: escaping, elements, axes and legends (where
// labels go is labels.ts). Styling is in attributes, not CSS, so that a chart
// saved on its own looks the same as inline in a page.
import type { Attrs, Axis, LegendEntry } from '../chart-model';
import { textWidth } from './text-metrics';

/** Text and attribute values for XML: the five characters that must not appear raw. */
export function esc(value: string | number | bigint): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

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

export function circle(cx: number, cy: number, r: number, a: Attrs = {}): string {
  return el('circle', { cx, cy, r, ...a });
}

export function path(d: string, a: Attrs = {}): string {
  return el('path', { d, fill: 'none', stroke: '#333', ...a });
}

/** A path through points, as straight segments. */
export function polyline(points: readonly (readonly [number, number])[]): string {
  return points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${round(x)} ${round(y)}`).join(' ');
}

/** A step path: horizontal to each new x, then vertical to its y. */
export function steps(points: readonly (readonly [number, number])[]): string {
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

/** An x axis at `y`: the line, tick marks, tick labels and the axis title (with its unit) centred below. */
function axisBottom(a: Axis): string {
  const [x0, x1] = a.range;
  const y = a.at;
  const parts = [line(x0, y, x1, y)];
  for (const t of a.ticks) parts.push(line(t.at, y, t.at, y + 4), text(t.at, y + 15, t.label, { 'text-anchor': 'middle' }));
  parts.push(text((x0 + x1) / 2, y + 32, a.title, { 'text-anchor': 'middle', 'font-weight': 'bold' }));
  return el('g', { class: 'axis x' }, parts.join(''));
}

/** A y axis at `x`: the line, ticks, labels, light grid lines across to `gridTo`, and the title above or aside. */
function axisLeft(a: Axis): string {
  const [y0, y1] = a.range;
  const x = a.at;
  const parts = [line(x, y0, x, y1)];
  for (const t of a.ticks) {
    if (a.gridTo !== undefined) parts.push(line(x, t.at, a.gridTo, t.at, { stroke: '#e4e4e4' }));
    parts.push(line(x - 4, t.at, x, t.at), text(x - 6, t.at + 4, t.label, { 'text-anchor': 'end' }));
  }
  if (a.titleAside) {
    const cy = (y0 + y1) / 2;
    parts.push(text(14, cy, a.title, { 'text-anchor': 'middle', 'font-weight': 'bold', transform: `rotate(-90 14 ${round(cy)})` }));
  } else {
    parts.push(text(x, Math.min(y0, y1) - 10, a.title, { 'text-anchor': 'start', 'font-weight': 'bold' }));
  }
  return el('g', { class: 'axis y' }, parts.join(''));
}

export function axis(a: Axis): string {
  return a.side === 'left' ? axisLeft(a) : axisBottom(a);
}

/** A legend row: a swatch (line or box) and its label per entry, left to right from (x, y). */
export function legend(x: number, y: number, entries: readonly LegendEntry[]): string {
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
