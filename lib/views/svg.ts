// SVG primitives for the charts: escaping, elements, axes, legends and the
// layout of labels. Styling is in attributes, not CSS, so that a chart saved
// on its own looks the same as inline in a page.
import type { Attrs, Axis, Box, LegendEntry } from '../chart-model';

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

// Advance widths in em of DejaVu Sans, book and bold, rounded up: the widest
// face in FONT's list and the one Linux falls back to, so that a width
// reckoned here is not short of the drawn one in any of them. Other
// characters (− ≤ × → ● ○ ✕ …) are at most 0.9 em.
const GLYPHS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;()[]-–—/_|!?"\'%&*@…';
const BOOK = [
  0.613, 0.635, 0.55, 0.635, 0.616, 0.353, 0.635, 0.634, 0.278, 0.278, 0.58, 0.278, 0.975, 0.634, 0.612, 0.635,
  0.635, 0.412, 0.521, 0.393, 0.634, 0.592, 0.818, 0.592, 0.592, 0.525, 0.685, 0.687, 0.699, 0.771, 0.632, 0.576,
  0.775, 0.752, 0.295, 0.295, 0.656, 0.558, 0.863, 0.749, 0.788, 0.604, 0.788, 0.695, 0.635, 0.611, 0.732, 0.685,
  0.989, 0.686, 0.611, 0.686, 0.637, 0.637, 0.637, 0.637, 0.637, 0.637, 0.637, 0.637, 0.637, 0.637, 0.318, 0.318,
  0.318, 0.337, 0.337, 0.391, 0.391, 0.391, 0.391, 0.361, 0.5, 1, 0.337, 0.5, 0.337, 0.401, 0.531, 0.46, 0.275,
  0.951, 0.78, 0.5, 1, 1,
];
const BOLD = [
  0.675, 0.716, 0.593, 0.716, 0.679, 0.436, 0.716, 0.712, 0.343, 0.343, 0.666, 0.343, 1.042, 0.712, 0.688, 0.716,
  0.716, 0.494, 0.596, 0.479, 0.712, 0.652, 0.924, 0.646, 0.652, 0.583, 0.774, 0.763, 0.734, 0.831, 0.684, 0.684,
  0.821, 0.837, 0.373, 0.373, 0.775, 0.638, 0.996, 0.837, 0.851, 0.733, 0.851, 0.771, 0.721, 0.683, 0.813, 0.774,
  1.104, 0.771, 0.725, 0.726, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.696, 0.349, 0.38,
  0.38, 0.4, 0.4, 0.458, 0.458, 0.458, 0.458, 0.416, 0.5, 1, 0.366, 0.5, 0.366, 0.457, 0.581, 0.521, 0.307, 1.002,
  0.873, 0.523, 1, 1,
];
const WIDEST = 0.9;

/**
 * A text's width at `fontSize`, from DejaVu Sans's advance widths: not less
 * than drawn, bar glyph ink overhanging the ends by under a pixel (which
 * textBox's padding covers), so labels kept apart by it stay apart.
 */
export function textWidth(content: string, fontSize = 11, bold = false): number {
  const widths = bold ? BOLD : BOOK;
  let em = 0;
  for (const ch of content) {
    const k = GLYPHS.indexOf(ch);
    em += k < 0 ? WIDEST : widths[k];
  }
  return em * fontSize;
}

/** Room kept around a label: its white halo (HALO) reaches 1.5 px beyond the glyphs. */
const PAD = 1.5;

/**
 * The area a text covers, its halo included: from its anchor along its width
 * (textWidth), from the ascent above the baseline y (0.76 em: digits,
 * capitals and brackets) to the descent below it (0.24 em).
 */
export function textBox(x: number, y: number, content: string, fontSize = 11, anchor?: string, bold = false): Box {
  const w = textWidth(content, fontSize, bold);
  const x0 = anchor === 'end' ? x - w : anchor === 'middle' ? x - w / 2 : x;
  return { x0: x0 - PAD, x1: x0 + w + PAD, y0: y - 0.76 * fontSize - PAD, y1: y + 0.24 * fontSize + PAD };
}

export function overlaps(a: Box, b: Box): boolean {
  return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

/** Where a label may go: its baseline point and how it hangs from it. */
export interface Spot {
  x: number;
  y: number;
  anchor?: 'start' | 'middle' | 'end';
}

/**
 * Spots around a point (cx, cy) of radius r, nearest first: right and left of
 * it, below and above, then the same a line further out each time.
 */
export function spotsAround(cx: number, cy: number, r: number, fontSize: number, lines = 4): Spot[] {
  const gap = r + 2;
  const below = cy + gap + 0.76 * fontSize + PAD;
  const above = cy - gap - 0.24 * fontSize - PAD;
  const spots: Spot[] = [];
  for (let k = 0; k <= lines; k++) {
    const step = k * (fontSize + 3);
    for (const [x, anchor] of [[cx + gap, 'start'], [cx - gap, 'end']] as const) {
      spots.push({ x, y: below + step, anchor }, { x, y: above - step, anchor });
    }
    if (k === 0) spots.push({ x: cx + gap + 2, y: cy + 0.26 * fontSize, anchor: 'start' }, { x: cx - gap - 2, y: cy + 0.26 * fontSize, anchor: 'end' });
  }
  return spots;
}

/**
 * Spots for a label `width` wide along a line from x0 to x1 at y: just above
 * it from the left end rightwards, then just below, then a line further out
 * each time; the label may reach past a short line, to the right or, at the
 * right end, to the left.
 */
export function spotsAlong(x0: number, x1: number, y: number, width: number): Spot[] {
  const xs: number[] = [];
  for (let x = x0 + 2; x === x0 + 2 || x + width <= x1 - 2; x += 4) xs.push(x);
  const spots: Spot[] = [];
  for (let k = 0; k < 4; k++) {
    for (const baseline of [y - 5 - k * 14, y + 13 + k * 14]) {
      spots.push(...xs.map((x) => ({ x, y: baseline })), { x: x1 - 2, y: baseline, anchor: 'end' as const });
    }
  }
  return spots;
}

/** Whether the segment from a to b crosses or touches the box (Liang–Barsky clipping). */
function crosses(a: readonly [number, number], b: readonly [number, number], box: Box): boolean {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  let t0 = 0;
  let t1 = 1;
  for (const [p, q] of [[-dx, a[0] - box.x0], [dx, box.x1 - a[0]], [-dy, a[1] - box.y0], [dy, box.y1 - a[1]]]) {
    if (p === 0) {
      if (q < 0) return false;
    } else {
      const t = q / p;
      if (p < 0) t0 = Math.max(t0, t);
      else t1 = Math.min(t1, t);
      if (t0 > t1) return false;
    }
  }
  return true;
}

/**
 * Lays labels out so that none covers a data point (`point`), an area marked
 * as taken (`block`: other text) or a label placed before it, and each stays
 * inside the bounds: it takes the first of its candidate spots that is free,
 * preferring one that no drawn line (`line`) runs through either.
 */
export class LabelPlacer {
  private readonly taken: Box[] = [];
  private readonly lines: (readonly [number, number])[][] = [];

  constructor(private readonly fontSize = 11, private readonly bounds?: Box) {}

  /** Marks an area (a legend, a title) that labels must avoid. */
  block(box: Box): void {
    this.taken.push(box);
  }

  /** Marks a data point drawn with radius r (stroke included) that labels must leave visible. */
  point(cx: number, cy: number, r: number): void {
    this.taken.push({ x0: cx - r, x1: cx + r, y0: cy - r, y1: cy + r });
  }

  /** A drawn polyline: a label goes across it (its halo keeps it readable) only when no other spot is free. */
  line(points: readonly (readonly [number, number])[]): void {
    if (points.length > 1) this.lines.push([...points]);
  }

  private boxAt(spot: Spot, content: string, bold: boolean): Box {
    return textBox(spot.x, spot.y, content, this.fontSize, spot.anchor, bold);
  }

  private fits(box: Box): boolean {
    const b = this.bounds;
    const inside = b === undefined || (box.x0 >= b.x0 && box.x1 <= b.x1 && box.y0 >= b.y0 && box.y1 <= b.y1);
    return inside && !this.taken.some((t) => overlaps(t, box));
  }

  private clear(box: Box): boolean {
    return !this.lines.some((pts) => pts.some((p, i) => i > 0 && crosses(pts[i - 1], p, box)));
  }

  /**
   * The label as a text element at the first free spot of `spots`. When none
   * is free it goes to the first; the tests' geometry check reports that.
   */
  place(spots: readonly Spot[], content: string, a: Attrs = {}): string {
    const bold = a['font-weight'] === 'bold';
    const free = spots.filter((s) => this.fits(this.boxAt(s, content, bold)));
    const spot = free.find((s) => this.clear(this.boxAt(s, content, bold))) ?? free[0] ?? spots[0];
    this.taken.push(this.boxAt(spot, content, bold));
    return text(spot.x, spot.y, content, {
      'font-size': this.fontSize === 11 ? undefined : this.fontSize,
      'text-anchor': spot.anchor === undefined || spot.anchor === 'start' ? undefined : spot.anchor,
      ...a,
    });
  }
}
