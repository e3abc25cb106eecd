// readResidency keeps the pages it reads in one array between calls (no
// array from malloc per region in the heap being measured): each call's
// answers are what pagemap said then, and a residency whose pages a later
// call reused says so instead of answering from them.
import { describe, expect, it } from 'vitest';
import { binding } from '../../lib/binding';
import { openPagemap, readResidency, residencyRegions } from '../../lib/doctor/residency';
import { maps } from '../../lib/maps';
import { heapRoomNotNeeded } from '../helpers/heap-room';

// It reads which pages are resident: it needs no room above the break.
heapRoomNotNeeded();

describe('readResidency', () => {
  it('answers as pagemap read each region, and refuses once a later call reused its pages', () => {
    const pageSize = binding.pageSize();
    const pagemap = openPagemap('self', pageSize, (e) => e);
    try {
      const regions = residencyRegions(maps());
      const heap = regions.find((r) => r.kind === 'heap')!;
      expect(heap).toBeDefined();
      const before = pagemap.pages(heap.start, heap.end).reduce((n, p) => n + p, 0);
      const first = readResidency(pagemap, regions, pageSize);
      const after = pagemap.pages(heap.start, heap.end).reduce((n, p) => n + p, 0);
      // The heap's pages as read between the two reads around it (this process's own pages only come in meanwhile).
      const answer = first.resident(heap.start, heap.end);
      expect(answer % pageSize).toBe(0);
      expect(answer / pageSize).toBeGreaterThanOrEqual(Math.min(before, after));
      expect(answer / pageSize).toBeLessThanOrEqual(Math.max(before, after));
      // Half the heap: the pages of that half alone.
      const mid = heap.start + ((heap.end - heap.start) / 2n / BigInt(pageSize)) * BigInt(pageSize);
      expect(first.resident(heap.start, mid) + first.resident(mid, heap.end)).toBe(answer);
      const second = readResidency(pagemap, regions.slice(0, 1), pageSize);
      expect(() => first.resident(heap.start, heap.end)).toThrow(/a later call has reused the pages/);
      expect(second.resident(regions[0].start, regions[0].end)).toBeGreaterThanOrEqual(0);
    } finally {
      pagemap.close();
    }
  });
});
