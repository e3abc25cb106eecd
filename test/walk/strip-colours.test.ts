// The terminal strip's top chunk must stay visible on a dark and on a light
// terminal. Readable here means WCAG's 3:1 contrast for graphics (SC 1.4.11)
// against black and against white, in xterm's default palette.
import { describe, expect, it } from 'vitest';
import { walkHeap } from '../../lib/index';
import { renderWalk } from '../../lib/views/walk-strip';

/** xterm's default colours for the SGR foreground codes. */
const XTERM: Record<number, string> = {
  30: '000000', 31: 'cd0000', 32: '00cd00', 33: 'cdcd00', 34: '0000ee', 35: 'cd00cd', 36: '00cdcd', 37: 'e5e5e5',
  90: '7f7f7f', 91: 'ff0000', 92: '00ff00', 93: 'ffff00', 94: '5c5cff', 95: 'ff00ff', 96: '00ffff', 97: 'ffffff',
};

function luminance(rgb: string): number {
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = parseInt(rgb.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

describe('the walk strip in colour', () => {
  it('paints the top chunk in a colour readable on black and on white', () => {
    const walk = walkHeap();
    expect(walk.main.top, 'the main heap has a top chunk').toBeDefined();
    const text = renderWalk(walk, { color: true });
    const codes = [...text.matchAll(/\x1b\[(\d+)m~+\x1b\[0m/g)].map((m) => Number(m[1]));
    expect(codes.length, 'the legend and the strip paint ~').toBeGreaterThan(1);
    for (const code of new Set(codes)) {
      const rgb = XTERM[code];
      expect(rgb, `SGR ${code} is one of the 16 colours`).toBeDefined();
      expect(contrast(rgb, '000000'), `SGR ${code} on black`).toBeGreaterThanOrEqual(3);
      expect(contrast(rgb, 'ffffff'), `SGR ${code} on white`).toBeGreaterThanOrEqual(3);
    }
  });
});
