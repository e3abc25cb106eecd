// The label placer checks a label where the SVG will draw it: coordinates
// are written to 0.1 px, and a spot that clears its neighbour by less than
// that before rounding can overlap it once written.
import { describe, expect, it } from 'vitest';
import { LabelPlacer } from '../../lib/views/labels';
import { HALO_PAD } from '../../lib/views/text-metrics';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// Bytes made here, no live heap: runs whatever room the process has.
heapRoomNotNeeded();

describe('LabelPlacer', () => {
  it('rejects a spot that overlaps a taken area only once its coordinates are rounded as the SVG writes them', () => {
    const placer = new LabelPlacer(10);
    // A label's box starts 0.76 × font size + the halo above its baseline.
    const clear = 80.14 + 0.76 * 10 + HALO_PAD + 0.005;
    placer.block({ x0: 0, x1: 100, y0: 70, y1: 80.14 });
    const svg = placer.place([{ x: 10, y: clear }, { x: 10, y: 120 }], 'label');
    expect(svg).toMatch(/ y="120"/);
  });
});
