// Where a chart's labels go: candidate spots around a point or along a line,
// and a placer that takes the first spot no data point, text, other label or
// drawn line is in the way of.
import type { Attrs, Box } from '../chart-model';
import { round, text } from './svg';
import { HALO_PAD, textBox } from './text-metrics';

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
  const below = cy + gap + 0.76 * fontSize + HALO_PAD;
  const above = cy - gap - 0.24 * fontSize - HALO_PAD;
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
    const [x, y] = [round(cx), round(cy)];
    this.taken.push({ x0: x - r, x1: x + r, y0: y - r, y1: y + r });
  }

  /** A drawn polyline: a label goes across it (its halo keeps it readable) only when no other spot is free. */
  line(points: readonly (readonly [number, number])[]): void {
    if (points.length > 1) this.lines.push([...points]);
  }

  // The SVG writes coordinates to 0.1 px: a label is checked where it will be drawn.
  private boxAt(spot: Spot, content: string, bold: boolean): Box {
    return textBox(round(spot.x), round(spot.y), content, this.fontSize, spot.anchor, bold);
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
