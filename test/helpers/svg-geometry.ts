// Where the charts' texts and marks are, from the SVG's own coordinates: the
// boxes that the label layout (lib/views/labels.ts) must keep apart. A text's
// width is textWidth's estimate, which the browser test checks against the
// widths Chromium draws.
import type { Box } from '../../lib/chart-model';
import { textBox } from '../../lib/views/text-metrics';

export interface Placed {
  box: Box;
  /** The class attribute, '' when there is none. */
  className: string;
  content: string;
}

function attributes(tag: string): Record<string, string> {
  return Object.fromEntries([...tag.matchAll(/\s([\w-]+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
}

const decode = (s: string) =>
  s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');

/** Every <text> that is not rotated, with the box it covers (halo included). */
export function textBoxes(svg: string): Placed[] {
  const size = Number(/^<svg\b[^>]*\sfont-size="([\d.]+)"/.exec(svg)?.[1] ?? 16);
  return [...svg.matchAll(/<text\b([^>]*)>([^<]*)<\/text>/g)]
    .map((m) => ({ a: attributes(m[1]), content: decode(m[2]) }))
    .filter(({ a }) => a.transform === undefined)
    .map(({ a, content }) => ({
      box: textBox(Number(a.x), Number(a.y), content, Number(a['font-size'] ?? size), a['text-anchor'], a['font-weight'] === 'bold'),
      className: a.class ?? '',
      content,
    }));
}

/** Every drawn point: circles, and the probes' crosses (paths of class `probe`), stroke included. */
export function markBoxes(svg: string): Placed[] {
  const circles = [...svg.matchAll(/<circle\b([^>]*)\/?>/g)].map((m) => {
    const a = attributes(m[1]);
    const r = Number(a.r) + Number(a['stroke-width'] ?? 0) / 2;
    return { box: { x0: Number(a.cx) - r, x1: Number(a.cx) + r, y0: Number(a.cy) - r, y1: Number(a.cy) + r }, className: a.class ?? '', content: '' };
  });
  const crosses = [...svg.matchAll(/<path\b([^>]*)\/?>/g)].map((m) => attributes(m[1])).filter((a) => /\bprobe\b/.test(a.class ?? '')).map((a) => {
    const n = (a.d.match(/-?[\d.]+/g) ?? []).map(Number);
    const xs = n.filter((_, i) => i % 2 === 0);
    const ys = n.filter((_, i) => i % 2 === 1);
    const w = Number(a['stroke-width'] ?? 0) / 2;
    return { box: { x0: Math.min(...xs) - w, x1: Math.max(...xs) + w, y0: Math.min(...ys) - w, y1: Math.max(...ys) + w }, className: a.class, content: '' };
  });
  return [...circles, ...crosses];
}

/** The svg element's width and height. */
export function svgSize(svg: string): { width: number; height: number } {
  const a = attributes(/^<svg\b([^>]*)>/.exec(svg)![1]);
  return { width: Number(a.width), height: Number(a.height) };
}
