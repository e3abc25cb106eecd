// One snapshot of another, running process's allocator: libc's writable
// data, [heap] and every thread-arena heap copied twice in a row. The
// target keeps running, so a copy counts only when malloc's state stood
// still: main_arena and mp_ equal in both copies of libc's data, every heap
// byte for byte equal in both (tcache traffic changes no malloc_state, only
// the heaps), the structures agree with each other (structureTornReason)
// and no arena's lock is held. Otherwise it is retaken. A non-contiguous main_arena's top lies in memory glibc took with
// mmap: a copy that missed it is retaken with that region too.
import { AllocatorImage, locateGlobals } from '../allocator/image';
import { GlibcLayout } from '../allocator/layouts';
import { libcDataRegions } from '../allocator/libc-data';
import { LibcFile } from '../allocator/libc-file';
import { decodeArenas } from '../allocator/arenas';
import { CopiedRange, copiedMemory, readBytes, sameBytes } from '../allocator/memory-source';
import { CopiedSnapshot, madeResidentReason } from '../allocator/results';
import { OUTSIDE_HEAP_LABEL, outsideNow, releaseCopies, retakeSources, structureTornReason, withHeaps } from '../allocator/take-snapshot';
import { releaseBytes } from '../fresh-memory';
import { hex } from '../format';
import { MemoryRegion, parseMaps, parseSettled, untouchedReadsZero } from '../maps';
import { readProcFile, readStatus } from './proc';
import { HeapscopeError } from '../errors';
import { RangeRead, readRanges } from './read-ranges';

export interface RemoteSnapshot extends CopiedSnapshot {
  pid: number;
  /** The target's map the copy was planned from. */
  maps: MemoryRegion[];
}

/**
 * Copies the allocator's memory of `pid`, retaking it (up to `attempts`)
 * while it is torn; the last copy is returned with `consistent: false` and
 * the reason when none stood still.
 */
export function takeRemoteSnapshot(pid: number, layout: GlibcLayout, libc: LibcFile, attempts: number): RemoteSnapshot {
  let last: RemoteSnapshot | undefined;
  let mainRegions: MemoryRegion[] = [];
  let heaps: MemoryRegion[] = [];
  for (let attempt = 1; attempt <= attempts; attempt++) {
    last = takeOnce(pid, layout, libc, attempt, mainRegions, heaps);
    if (last.consistent) return last;
    // The map now: a region the process mapped since the copy was planned may hold what the copy missed.
    const next = retakeSources(last.reason!, last.image, mapWithLibc(pid, libc).regions, mainRegions, heaps);
    if ('final' in next) return { ...last, reason: next.final };
    // A copy to be retaken goes back now, not when Node's event loop next turns.
    if (attempt < attempts) releaseCopies(last);
    ({ mainRegions, heaps } = next);
  }
  return last!;
}

/** The target's map now and its libc data regions; ERR_PROCESS_EXITED when it no longer maps the libc it was attached with. */
export function mapWithLibc(pid: number, libc: LibcFile): { regions: MemoryRegion[]; libcData: MemoryRegion[] } {
  const regions = parseSettled(() => readProcFile(pid, 'maps'), parseMaps);
  const libcData = libcDataRegions(regions);
  if (libcData.length === 0 || libcData[0].inode !== libc.inode || libcData[0].dev !== libc.dev) {
    readStatus(pid);
    throw new HeapscopeError('ERR_PROCESS_EXITED', `process ${pid} no longer maps the libc it was attached with: it exited or ran another program`);
  }
  return { regions, libcData };
}

function takeOnce(
  pid: number, layout: GlibcLayout, libc: LibcFile, attempt: number, mainRegions: readonly MemoryRegion[], missed: readonly MemoryRegion[],
): RemoteSnapshot {
  const { regions, libcData } = mapWithLibc(pid, libc);
  const heap = regions.find((r) => r.kind === 'heap');
  const arenaHeaps = withHeaps(regions.filter((r) => r.kind === 'arena-heap'), missed);
  const planned: { region: MemoryRegion; label: string }[] = [
    ...libcData.map((region) => ({ region, label: 'libc data' })),
    ...(heap === undefined ? [] : [{ region: heap, label: '[heap]' }]),
    ...arenaHeaps.map((region) => ({ region, label: 'arena heap' })),
    ...outsideNow(mainRegions, regions, [...libcData, ...(heap === undefined ? [] : [heap]), ...arenaHeaps])
      .map((region) => ({ region, label: OUTSIDE_HEAP_LABEL })),
  ];
  // Private anonymous memory: its pages never touched are left zero, not made resident by the copy.
  const once = planned.map(({ region }) => ({ address: region.start, length: BigInt(region.size), anonymous: untouchedReadsZero(region) }));
  // The first copy whole, then the second: each range stood still between
  // its two reads, so all of them did between the end of the first copy and
  // the start of the second. In one call, the native side reads the plain
  // ranges (libc's .data, main_arena with it) before the anonymous ones, so
  // both reads of main_arena would come before the first of any heap.
  const reads = [...readRanges(pid, once), ...readRanges(pid, once)];
  const again = reads.slice(planned.length);
  try {
    const unread = reads.map((r) => r.pagemapErrno).find((e) => e !== undefined);
    const ranges: CopiedRange[] = planned.flatMap((p, i) => (reads[i].bytes.length === 0 ? [] : [{ base: p.region.start, bytes: reads[i].bytes, label: p.label }]));
    const image: AllocatorImage = {
      layout, memory: copiedMemory(ranges), libcData: libcData.map((r) => ({ start: r.start, end: r.end })),
      ...(heap === undefined ? {} : { heap: { start: heap.start, end: heap.end } }),
    };
    const snapshot: RemoteSnapshot = {
      pid, maps: regions, image, libc, attempts: attempt, consistent: true,
      ...(unread === undefined ? {} : { madeResident: madeResidentReason(`/proc/${pid}/pagemap`, unread) }),
    };
    const failed = planned.findIndex((_, i) => reads[i].errno !== 0);
    const reason = failed >= 0
      ? `reading ${planned[failed].label} at ${hex(planned[failed].region.start)} failed (errno ${reads[failed].errno}): the map changed since it was read`
      : tornReason(image, planned, again, arenaHeaps);
    return reason === undefined ? snapshot : { ...snapshot, consistent: false, reason };
  } finally {
    // The second copy was read only to be compared with the first.
    releaseBytes(again.map((r) => r.bytes));
  }
}

/** Why the copy of a running process is torn, or undefined. `again` is the second copy of each of `planned`. */
function tornReason(
  image: AllocatorImage, planned: readonly { region: MemoryRegion; label: string }[], again: readonly RangeRead[], arenaHeaps: readonly MemoryRegion[],
): string | undefined {
  const changed = planned.findIndex((p, i) => p.label !== 'libc data' && (again[i].errno !== 0 || !sameBytes(image.memory.read(p.region.start, p.region.size), again[i].bytes)));
  if (changed >= 0) return `${planned[changed].label} at ${hex(planned[changed].region.start)} changed between two copies in a row: the process used malloc`;
  const globals = locateGlobals(image);
  if (!globals.mainArena.found) return `main_arena was not found: ${globals.mainArena.reason}`;
  const libcAgain = planned.flatMap((p, i) => (p.label === 'libc data' ? [{ base: p.region.start, bytes: again[i].bytes, label: 'libc data (again)' }] : []));
  const second = copiedMemory(libcAgain);
  const watched: [string, bigint, number][] = [['main_arena', globals.mainArena.address, image.layout.mallocState.size]];
  if (globals.mallocPar.found) watched.push(['mp_', globals.mallocPar.address, image.layout.mallocPar.size]);
  for (const [name, address, size] of watched) {
    if (!sameBytes(readBytes(image.memory, address, size), readBytes(second, address, size))) {
      return `${name} changed between two copies in a row: the process used malloc`;
    }
  }
  const structural = structureTornReason(image, arenaHeaps);
  if (structural !== undefined) return structural;
  // A thread descheduled inside malloc leaves both copies equal and the state half-changed: its arena's lock is held.
  const par = globals.mallocPar.found ? globals.mallocPar.value : undefined;
  const locked = decodeArenas(image, globals.mainArena.address, par).arenas.find((a) => a.mutex !== 0);
  return locked === undefined ? undefined : `arena ${hex(locked.address)}'s mutex is held: a thread was inside malloc or free`;
}

