// How wide and tall a chart's text is drawn, reckoned without a browser.
// Imports nothing: the SVG elements (svg.ts) and the label layout (labels.ts)
// both measure with it.

// Advance widths in em of DejaVu Sans, book and bold, rounded up: the widest
// face in the charts' font list (FONT in svg.ts) and the one Linux falls back
// to, so that a width reckoned here is not short of the drawn one in any of
// them. Other characters (− ≤ × → ● ○ ✕ …) are at most 0.9 em.
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
export const HALO_PAD = 1.5;

/**
 * The area a text covers, its halo included: from its anchor along its width
 * (textWidth), from the ascent above the baseline y (0.76 em: digits,
 * capitals and brackets) to the descent below it (0.24 em). A Box of
 * lib/chart-model.ts.
 */
export function textBox(x: number, y: number, content: string, fontSize = 11, anchor?: string, bold = false) {
  const w = textWidth(content, fontSize, bold);
  const x0 = anchor === 'end' ? x - w : anchor === 'middle' ? x - w / 2 : x;
  return { x0: x0 - HALO_PAD, x1: x0 + w + HALO_PAD, y0: y - 0.76 * fontSize - HALO_PAD, y1: y + 0.24 * fontSize + HALO_PAD };
}
