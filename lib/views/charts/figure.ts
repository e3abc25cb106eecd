// Any figure (lib/chart-model.ts) as a standalone SVG document that is also
// valid inline in HTML: each mark as its element, in the figure's order.
// Knows no experiment: what to draw where is the figure's.
import type { Figure, Labels, Mark } from '../../chart-model';
import { LabelPlacer, Spot, spotsAlong, spotsAround } from '../labels';
import { axis, circle, el, legend, line, path, polyline, rect, round, steps, svgDocument, text } from '../svg';
import { textBox, textWidth } from '../text-metrics';

export function figureSVG(figure: Figure): string {
  return svgDocument(figure.width, figure.height, figure.title, figure.marks.map(markSVG).join(''));
}

function markSVG(m: Mark): string {
  switch (m.mark) {
    case 'rect': return rect(m.x, m.y, m.width, m.height, m.attrs);
    case 'line': return line(m.x1, m.y1, m.x2, m.y2, m.attrs);
    case 'polyline': return path(polyline(m.points), m.attrs);
    case 'steps': return path(steps(m.points), m.attrs);
    case 'circle': return circle(m.x, m.y, m.r, m.attrs);
    case 'cross': return el('path', { d: cross(m.x, m.y, m.size), ...m.attrs });
    case 'zigzag': return path(zigzag(m.x0, m.x1, m.y), m.attrs);
    case 'text': return text(m.x, m.y, m.text, m.attrs);
    case 'legend': return legend(m.x, m.y, m.entries);
    case 'axis': return axis(m);
    case 'labels': return labels(m);
  }
}

// Unlike polyline and steps, these two paths write their coordinates
// unrounded: so the charts have always drawn them (test/fixtures/views/).

function cross(x: number, y: number, s: number): string {
  return `M${x - s} ${y - s}L${x + s} ${y + s}M${x - s} ${y + s}L${x + s} ${y - s}`;
}

/** Up and down by 4 px every 8 px. */
function zigzag(x0: number, x1: number, y: number): string {
  const d = [`M${x0} ${y}`];
  for (let x = x0 + 8, up = true; x <= x1; x += 8, up = !up) d.push(`L${x} ${y + (up ? -4 : 4)}`);
  return d.join(' ');
}

/** Every label at its first free spot, once all that they avoid is known. */
function labels(m: Labels): string {
  const placer = new LabelPlacer(m.fontSize, m.bounds);
  for (const p of m.avoid.points ?? []) placer.point(p.x, p.y, p.r);
  for (const t of m.avoid.texts ?? []) placer.block(textBox(round(t.x), round(t.y), t.text));
  for (const l of m.avoid.lines ?? []) placer.line(l);
  return m.labels.map((l) => {
    const spots: Spot[] = 'around' in l
      ? spotsAround(l.around.x, l.around.y, l.around.r, m.fontSize)
      : spotsAlong(l.along.x0, l.along.x1, l.along.y, textWidth(l.text, m.fontSize, l.attrs?.['font-weight'] === 'bold'));
    return placer.place(spots, l.text, l.attrs);
  }).join('');
}
