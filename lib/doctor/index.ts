// doctor(): where this process's memory is and what to do about it, every
// sentence with its figure (the parts: diagnose.ts and what it calls). With
// { trim: true } it then calls malloc_trim(0) and measures the RSS drop in
// the same native call, beside what was predicted.
import v8 from 'node:v8';
import fs from 'node:fs';
import { decodeSnapshot, Decoded } from '../allocator/results';
import { mergedRanges } from '../address-ranges';
import { AllocatorSnapshot, outsideHeapOf, releaseCopies, takeAllocatorSnapshot } from '../allocator/take-snapshot';
import { binding } from '../binding';
import { HeapscopeError, native, typeError } from '../errors';
import { maps } from '../maps';
import { runPlan } from '../plan';
import { DocumentMethods, DocumentViews, presenter, withDocumentViews } from '../presenters';
import { MALLINFO_FIELDS, Mallinfo } from '../stats';
import { describe, readOptions } from '../validate';
import { diagnose, DoctorSource } from './diagnose';
import { openPagemap, PagemapReader, readResidency, residencyRegions } from './residency';
import type { DoctorData, TrimMeasured, TrimRange, V8Heap } from './types';

export { diagnose } from './diagnose';
export type { DoctorSource } from './diagnose';
export { openPagemap, readResidency, residencyRegions } from './residency';
export type { HeaderReader } from './mmapped';
export { THRESHOLDS } from './findings';
export type * from './types';

/** doctor()'s result: the data, and its views (non-enumerable). */
export interface DoctorResult extends DoctorData, DocumentMethods {}

export interface DoctorOptions {
  /** Call malloc_trim(0) after the diagnosis and measure the RSS drop beside the prediction (this process only). */
  trim?: boolean;
}

/** How a diagnosis shows itself; installed by the view layer. */
export const doctorViews = presenter<DocumentViews<DoctorData>>('doctor()');

export function doctorResult(data: DoctorData): DoctorResult {
  return withDocumentViews(data, () => doctorViews.views);
}

function v8Heap(): V8Heap {
  const spaces = v8.getHeapSpaceStatistics().map((s) => ({
    name: s.space_name, size: s.space_size, used: s.space_used_size, physical: s.physical_space_size,
  }));
  return { spaces, physical: spaces.reduce((n, s) => n + s.physical, 0) };
}

function readError(file: string): (e: NodeJS.ErrnoException) => Error {
  return (e) => new HeapscopeError('ERR_READ_FAILED', `cannot read ${file}: ${e.message}`, {
    errno: e.errno === undefined ? undefined : Math.abs(e.errno), syscall: e.syscall,
  });
}

/** A diagnosis with the snapshot and decode it came from. */
export interface Diagnosis {
  data: DoctorData;
  decoded: Decoded;
  /** This process: mallinfo2() of the snapshot's native call. */
  mallinfo?: Mallinfo;
  /** When the copy was made. */
  takenAt: Date;
  /** The ranges outside [heap] a non-contiguous main_arena led the copy to (none when it is contiguous). */
  outsideHeap: { start: bigint; end: bigint }[];
}

/**
 * This process diagnosed now; `then` gets the diagnosis while /proc/self/pagemap
 * is still open (doctor's trim reads it again).
 */
export function diagnoseSelf<T>(then: (diagnosis: Diagnosis, pagemap: PagemapReader, pageSize: number) => T): T {
  const pageSize = binding.pageSize();
  // Opened (and its buffer made) before the snapshot: reading it later allocates nothing from malloc.
  const pagemap = openPagemap('self', pageSize, readError('/proc/self/pagemap'));
  let snapshot: AllocatorSnapshot | undefined;
  try {
    const regions = maps({ rss: true });
    const residency = readResidency(pagemap, residencyRegions(regions), pageSize);
    snapshot = takeAllocatorSnapshot();
    const takenAt = new Date();
    const decoded = decodeSnapshot(snapshot);
    const source: DoctorSource = {
      pid: process.pid, self: true, cmdline: [...process.argv], glibc: snapshot.image.layout.version, layout: snapshot.image.layout,
      libc: snapshot.libc, ...(snapshot.image.heap === undefined ? {} : { heap: snapshot.image.heap }), decoded,
      mallinfo: snapshot.mallinfo, regions, pageSize, root: '', threads: fs.readdirSync('/proc/self/task').length, v8: v8Heap(), residency,
      readHeaders: (addresses) => addresses.map((a) => {
        try {
          return native(() => binding.readMemory(a, 16n));
        } catch {
          return undefined;
        }
      }),
    };
    return then({ data: diagnose(source), decoded, mallinfo: snapshot.mallinfo, takenAt, outsideHeap: outsideHeapOf(snapshot.image) }, pagemap, pageSize);
  } finally {
    // What `then` makes (a diagnosis, a heap snapshot) keeps figures, never the copy's bytes: its copies go back now, as a
    // walk's do, not when Node's event loop next turns (a loop of diagnoses that never yields held every one).
    if (snapshot !== undefined) releaseCopies(snapshot);
    pagemap.close();
  }
}

/** This process, diagnosed now; see DoctorOptions. */
export function doctor(options: DoctorOptions = {}): DoctorResult {
  const trim = readOptions(options, 'options', ['trim']).trim ?? false;
  if (typeof trim !== 'boolean') throw typeError(`options.trim must be a boolean, got ${describe(trim)}`);
  return diagnoseSelf(({ data, mallinfo, decoded, outsideHeap }, pagemap, pageSize) => {
    if (trim) {
      // [heap] up to the break as it is now: the decode's own allocations may have grown it past the snapshot.
      const now = binding.programBreak();
      // And a non-contiguous main_arena's memory outside [heap] (its top region within it): chunks freed after the snapshot land there too.
      // Merged, as the range around a chunk can take in a thread heap sharing its map line.
      const heaps = mergedRanges(decoded.state.walks.map((w) => ({ start: w.start, end: w.kind === 'heap' && now > w.end ? now : w.end })), outsideHeap);
      data.trimmed = trimNow(data.trim.ranges, heaps, mallinfo!, pagemap, pageSize);
    }
    return doctorResult(data);
  });
}

/**
 * malloc_trim(0) between two reads of /proc/self/statm in one native call,
 * the predicted ranges' residency read again just before and just after.
 * mallinfo2() in the same call tells whether malloc's state moved since the
 * snapshot the prediction came from.
 */
function trimNow(
  ranges: readonly TrimRange[], heaps: readonly { start: bigint; end: bigint }[], before: Mallinfo, pagemap: PagemapReader, pageSize: number,
): TrimMeasured {
  const residentIn = (spans: readonly { start: bigint; end: bigint }[]) =>
    spans.reduce((n, r) => n + pagemap.pages(r.start, r.end).reduce((k, p) => k + p, 0) * pageSize, 0);
  const heapsBefore = residentIn(heaps);
  const predicted = residentIn(ranges);
  const steps = runPlan([{ op: 'mallinfo' }, { op: 'statm' }, { op: 'trim', pad: 0 }, { op: 'statm' }]).steps;
  const stillResident = residentIn(ranges);
  // Chunks freed after the snapshot (the decode's own garbage, collected) are
  // free for malloc_trim too: what it took from the heaps outside the
  // predicted ranges, the prediction could not see.
  const elsewhere = Math.max(0, heapsBefore - residentIn(heaps) - (predicted - stillResident));
  const [m, s0, t, s1] = steps;
  if (s0.rssPages === undefined || s1.rssPages === undefined || t.released === undefined) {
    throw new HeapscopeError('ERR_READ_FAILED', `the trim plan failed: ${steps.map((s) => `${s.op} ${s.status}`).join(', ')}`);
  }
  const rssBefore = s0.rssPages * pageSize;
  const rssAfter = s1.rssPages * pageSize;
  return {
    released: t.released, rssBefore, rssAfter, drop: rssBefore - rssAfter, predicted, stillResident, elsewhere,
    changed: MALLINFO_FIELDS.filter((f) => m.mallinfo !== undefined && m.mallinfo[f] !== before[f]),
  };
}
