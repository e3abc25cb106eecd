// Copies of another process's memory, read from /proc/PID/mem (allowed for
// a parent, or for root), for code that must work on any process's bytes.
import fs from 'node:fs';
import { MemoryRegion, parseMaps } from '../../lib/maps';
import { Snapshot } from '../../lib/allocator/snapshot';

export function regionsOf(pid: number): MemoryRegion[] {
  return parseMaps(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
}

/** Copies each region whole. */
export function copyRegions(pid: number, regions: readonly MemoryRegion[]): Snapshot[] {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    return regions.map((r) => {
      const bytes = Buffer.alloc(r.size);
      const n = fs.readSync(fd, bytes, 0, r.size, r.start);
      if (n !== r.size) throw new Error(`read ${n} of ${r.size} bytes at 0x${r.start.toString(16)} of process ${pid}`);
      return { base: r.start, bytes };
    });
  } finally {
    fs.closeSync(fd);
  }
}
