// attach(pid).doctor(): the diagnosis of another process, from a snapshot
// of its allocator, its smaps, its pagemap and the headers at the starts of
// its anonymous mappings, all read without stopping it.
import { layoutFor } from '../allocator/layouts';
import fs from 'node:fs';
import { Decoded } from '../allocator/results';
import { outsideHeapOf } from '../allocator/take-snapshot';
import { binding } from '../binding';
import { BeforeSnapshot, diagnose, hugeDontneed, readBeforeSnapshot } from '../doctor/diagnose';
import type { Diagnosis } from '../doctor/index';
import { openPagemap, PagemapReader } from '../doctor/residency';
import { MemoryRegion } from '../maps';
import { procError } from './proc';
import { RemoteSnapshot } from './snapshot';

export interface RemoteTarget {
  pid: number;
  cmdline: readonly string[];
  glibc: string;
}

/**
 * The map with resident sizes (smaps) and the residency of what doctor
 * needs, read before the snapshot is taken; `snapshot` is then taken and
 * decoded, and the diagnosis made.
 */
export function remoteDiagnosis(
  target: RemoteTarget, readMaps: () => MemoryRegion[], snapshot: () => { s: RemoteSnapshot; d: Decoded },
): Diagnosis {
  const { pid } = target;
  const pageSize = binding.pageSize();
  const pagemap: PagemapReader = openPagemap(pid, pageSize, (e) => procError(pid, e, `/proc/${pid}/pagemap`));
  let before: BeforeSnapshot | undefined;
  try {
    const regions = readMaps();
    before = readBeforeSnapshot(pid, layoutFor(target.glibc), regions, pageSize, pagemap);
    const { s, d } = snapshot();
    const takenAt = new Date();
    let threads = 0;
    try {
      threads = fs.readdirSync(`/proc/${pid}/task`).length;
    } catch (error) {
      throw procError(pid, error as NodeJS.ErrnoException, `/proc/${pid}/task`);
    }
    const data = diagnose({
      pid, self: false, cmdline: [...target.cmdline], glibc: target.glibc, layout: s.image.layout, libc: s.libc,
      ...(s.image.heap === undefined ? {} : { heap: s.image.heap }), decoded: d, regions, pageSize, threads, before, hugeDontneed: hugeDontneed(),
    });
    return { data, decoded: d, takenAt, outsideHeap: outsideHeapOf(s.image) };
  } finally {
    before?.residency.release();
    pagemap.close();
  }
}
