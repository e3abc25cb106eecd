// An AllocatorImage of another process: its libc data, [heap] and thread-arena
// heaps copied from /proc/PID/mem (see proc-mem.ts), as a later
// process_vm_readv source would copy them. A heap the map does not show as
// one (its line merged with a neighbour's) is copied too, once the first
// copy's arena list leads to it (missedHeaps, as heapscope's own retakes do).
import { AllocatorImage } from '../../lib/allocator/image';
import { GlibcLayout } from '../../lib/allocator/layouts';
import { libcDataRegions } from '../../lib/allocator/libc-data';
import { CopiedRange, copiedMemory } from '../../lib/allocator/memory-source';
import { missedHeaps, withHeaps } from '../../lib/allocator/take-snapshot';
import { MemoryRegion } from '../../lib/maps';
import { copyRegions, regionsOf } from './proc-mem';

export function imageOfProcess(pid: number, layout: GlibcLayout): { image: AllocatorImage; regions: MemoryRegion[] } {
  const regions = regionsOf(pid);
  const heaps = regions.filter((r) => r.kind === 'arena-heap');
  const first = copied(pid, layout, regions, heaps);
  const more = withHeaps(heaps, missedHeaps(first, regions));
  return { image: more.length === heaps.length ? first : copied(pid, layout, regions, more), regions };
}

function copied(pid: number, layout: GlibcLayout, regions: readonly MemoryRegion[], heaps: readonly MemoryRegion[]): AllocatorImage {
  const libc = libcDataRegions(regions);
  const heap = regions.find((r) => r.kind === 'heap');
  const labelled: [MemoryRegion, string][] = [
    ...libc.map((r): [MemoryRegion, string] => [r, 'libc data']),
    ...(heap === undefined ? [] : [[heap, '[heap]'] as [MemoryRegion, string]]),
    ...heaps.map((r): [MemoryRegion, string] => [r, 'arena heap']),
  ];
  const copies = copyRegions(pid, labelled.map(([r]) => r));
  const ranges: CopiedRange[] = copies.map((c, i) => ({ ...c, label: labelled[i][1] }));
  return {
    layout, memory: copiedMemory(ranges), libcData: libc.map((r) => ({ start: r.start, end: r.end })),
    // Another process's break is not known from outside; glibc's sbrk steps keep it at [heap]'s end.
    ...(heap === undefined ? {} : { heap: { start: heap.start, end: heap.end } }),
  };
}
