// doctor(): where this process's memory is and what to do about it, every
// sentence with its figure (the parts: diagnose.ts and what it calls). With
// { trim: true } it then calls malloc_trim(0) and measures the RSS drop in
// the same native call, beside what was predicted.
import v8 from 'node:v8';
import fs from 'node:fs';
import type { AddressRange } from '../allocator/locate-input';
import { decodeSnapshot, Decoded } from '../allocator/results';
import { mergedRanges } from '../address-ranges';
import { AllocatorSnapshot, outsideHeapOf, releaseCopies, snapshotAttempts, takeAllocatorSnapshot } from '../allocator/take-snapshot';
import { binding } from '../binding';
import { HeapscopeError, typeError } from '../errors';
import { maps } from '../maps';
import { runPlan } from '../plan';
import { DocumentMethods, DocumentViews, presenter, withDocumentViews } from '../presenters';
import { glibcVersion, MALLINFO_FIELDS, Mallinfo, mallinfo2 } from '../stats';
import { layoutFor } from '../allocator/layouts';
import { describe, readOptions } from '../validate';
import { BeforeSnapshot, diagnose, DoctorSource, hugeDontneed, readBeforeSnapshot } from './diagnose';
import { openPagemap } from './residency';
import type { DoctorData, TrimMeasured, TrimRange, V8Heap } from './types';

export { THRESHOLDS } from './findings';
export type * from './types';

/** doctor()'s result: the data, and its views (non-enumerable). */
export interface DoctorResult extends DoctorData, DocumentMethods {}

export interface DoctorOptions {
  /** Call malloc_trim(0) after the diagnosis and measure the RSS drop beside the prediction (this process only). */
  trim?: boolean;
  /** Snapshots to try for a consistent one (default 5, at most 100), as walkHeap's. */
  attempts?: number;
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

/** This process diagnosed now, handed to `then` while the snapshot's copies are held. */
export function diagnoseSelf<T>(then: (diagnosis: Diagnosis) => T, attempts?: number): T {
  const pageSize = binding.pageSize();
  // Opened (and its buffer mapped) before the snapshot: reading it later allocates nothing from malloc.
  const pagemap = openPagemap('self', pageSize, readError('/proc/self/pagemap'));
  let snapshot: AllocatorSnapshot | undefined;
  let before: BeforeSnapshot | undefined;
  try {
    const regions = maps({ rss: true });
    // glibc's count of its mmapped chunks, where mallinfo2 gives it whole (mallinfo's hblkhd is an int).
    const counts = mallinfo2();
    before = readBeforeSnapshot(process.pid, layoutFor(glibcVersion()), regions, pageSize, pagemap, counts.source === 'mallinfo2' ? { count: counts.hblks, bytes: counts.hblkhd } : undefined);
    snapshot = takeAllocatorSnapshot(attempts === undefined ? {} : { attempts }, { released: true });
    const takenAt = new Date();
    const decoded = decodeSnapshot(snapshot);
    const source: DoctorSource = {
      pid: process.pid, self: true, cmdline: [...process.argv], glibc: snapshot.image.layout.version, layout: snapshot.image.layout,
      libc: snapshot.libc, ...(snapshot.image.heap === undefined ? {} : { heap: snapshot.image.heap }), decoded,
      mallinfo: snapshot.mallinfo, regions, pageSize, threads: fs.readdirSync('/proc/self/task').length, v8: v8Heap(), before, hugeDontneed: hugeDontneed(),
    };
    return then({ data: diagnose(source), decoded, mallinfo: snapshot.mallinfo, takenAt, outsideHeap: outsideHeapOf(snapshot.image) });
  } finally {
    // What `then` makes (a diagnosis, a heap snapshot) keeps figures, never the copy's bytes: its copies go back now, as a
    // walk's do, not when Node's event loop next turns (a loop of diagnoses that never yields held every one).
    if (snapshot !== undefined) releaseCopies(snapshot);
    before?.residency.release();
    pagemap.close();
  }
}

/** This process, diagnosed now; see DoctorOptions. */
export function doctor(options: DoctorOptions = {}): DoctorResult {
  const read = readOptions(options, 'options', ['trim', 'attempts']);
  const trim = read.trim ?? false;
  if (typeof trim !== 'boolean') throw typeError(`options.trim must be a boolean, got ${describe(trim)}`);
  const attempts = snapshotAttempts(read.attempts);
  return diagnoseSelf(({ data, mallinfo, decoded, outsideHeap }) => {
    if (trim) {
      // [heap] up to the break as it is now: the decode's own allocations may have grown it past the snapshot.
      const now = binding.programBreak();
      // And a non-contiguous main_arena's memory outside [heap] (its top region within it): chunks freed after the snapshot land there too.
      // Merged, as the range around a chunk can take in a thread heap sharing its map line.
      const heaps = mergedRanges(decoded.state.walks.map((w) => ({ start: w.start, end: w.kind === 'heap' && now > w.end ? now : w.end })), outsideHeap);
      data.trimmed = trimNow(data.trim.ranges, heaps, mallinfo!, data.pageSize, data.trim.hugePagesKept?.ranges ?? []);
    }
    return doctorResult(data);
  }, attempts);
}

/**
 * malloc_trim(0) between two reads of /proc/self/statm in one native call,
 * the residency of the predicted ranges and of the heaps counted just before
 * and just after it in the same call: once the call returns, JavaScript
 * mallocs again (V8's optimizing compiler took ~1 MiB of the ranges just
 * trimmed, which a read after the call counted as never given back).
 * mallinfo2() in the same call tells whether malloc's state moved since the
 * snapshot the prediction came from.
 */
function trimNow(ranges: readonly TrimRange[], heaps: readonly AddressRange[], before: Mallinfo, pageSize: number, kept: readonly TrimRange[]): TrimMeasured {
  const counts = [...heaps, ...ranges, ...kept].map((r) => ({ op: 'pagemap', address: r.start, length: r.end - r.start }) as const);
  // The two statm steps side by side: the records of the steps between them are written as they run, and each of their pages
  // the plan writes first is a page more in the resident set (the counts' records between them took 100 KiB from the drop).
  const steps = runPlan([{ op: 'mallinfo' }, ...counts, { op: 'statm' }, { op: 'trim', pad: 0 }, { op: 'statm' }, ...counts]).steps;
  const [s0, t, s1] = steps.slice(1 + counts.length);
  const after = 4 + counts.length;
  if (s0.rssPages === undefined || s1.rssPages === undefined || t.released === undefined || steps.some((s) => s.status !== 'ok')) {
    throw new HeapscopeError('ERR_READ_FAILED', `the trim plan failed: ${steps.filter((s) => s.status !== 'ok').map((s) => `${s.op} ${s.status}`).join(', ')}`);
  }
  const resident = (from: number, count: number) => steps.slice(from, from + count).reduce((n, s) => n + s.residentPages!, 0) * pageSize;
  const heapsBefore = resident(1, heaps.length);
  const predicted = resident(1 + heaps.length, ranges.length);
  const stillResident = resident(after + heaps.length, ranges.length);
  const keptBack = kept.length === 0 ? {} : {
    hugePagesKept: { before: resident(1 + heaps.length + ranges.length, kept.length), after: resident(after + heaps.length + ranges.length, kept.length) },
  };
  // Chunks freed after the snapshot (the decode's own garbage, collected) are
  // free for malloc_trim too: what it took from the heaps outside the
  // predicted ranges, the prediction could not see.
  const elsewhere = Math.max(0, heapsBefore - resident(after, heaps.length) - (predicted - stillResident));
  const rssBefore = s0.rssPages * pageSize;
  const rssAfter = s1.rssPages * pageSize;
  return {
    released: t.released, rssBefore, rssAfter, drop: rssBefore - rssAfter, predicted, stillResident, elsewhere,
    changed: MALLINFO_FIELDS.filter((f) => steps[0].mallinfo !== undefined && steps[0].mallinfo[f] !== before[f]),
    ...keptBack,
  };
}
