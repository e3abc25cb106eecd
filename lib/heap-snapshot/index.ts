// Heap snapshots: the decoded state of a process's allocator at one moment,
// saved in a versioned format (no raw bytes), read back, and compared.
// heapSnapshot() is this process; attach(pid).heapSnapshot() another.
import { Diagnosis, diagnoseSelf } from '../doctor/index';
import { toJSONValue } from '../json';
import { DocumentMethods, DocumentViews, presenter, withDocumentViews } from '../presenters';
import { snapshotAttempts } from '../allocator/take-snapshot';
import { descriptor, readOptions } from '../validate';
import { buildHeapSnapshot } from './build';
import { diffSnapshots, HeapDiffData } from './diff';
import { parseHeapSnapshot } from './parse';
import type { HeapSnapshotData } from './types';

export { classOf, countChunks } from './build';
export { diffSnapshots } from './diff';
export type { ArenaDiff, ClassDiff, DiffSide, HeapDiffData, Pair } from './diff';
export { parseHeapSnapshot } from './parse';
export { summarize } from './summary';
export type { SnapshotSummary } from './summary';
export * from './types';

/** A snapshot: its data, its views (non-enumerable), and toJSON(), the file's content (bigints as "0x…"). */
export interface HeapSnapshot extends HeapSnapshotData, DocumentMethods {
  toJSON(): unknown;
}

/** What changed between two snapshots, with its views (non-enumerable). */
export interface HeapDiff extends HeapDiffData, DocumentMethods {}

/** How snapshots and diffs show themselves; installed by the view layer. */
export const snapshotViews = presenter<{ snapshot: DocumentViews<HeapSnapshotData>; diff: DocumentViews<HeapDiffData> }>('heap snapshots');

function withViews(data: HeapSnapshotData): HeapSnapshot {
  const result = withDocumentViews(data, () => snapshotViews.views.snapshot);
  Object.defineProperty(result, 'toJSON', descriptor({ value(this: HeapSnapshotData) { return toJSONValue({ ...this }); } }));
  return result as HeapSnapshot;
}

/** The snapshot a diagnosis gives (the doctor's figures and the decode's chunks). */
export function heapSnapshotOf(d: Diagnosis): HeapSnapshot {
  return withViews(buildHeapSnapshot(d.data, d.decoded, d.takenAt, d.mallinfo));
}

/**
 * This process's allocator now, decoded: per arena and size class the
 * chunks in use and free (by place), top, mmapped chunks, RSS by kind, the
 * parameters in force, which process and when. `JSON.stringify` of it is
 * what `heapscope snapshot` writes.
 */
export function heapSnapshot(options: HeapSnapshotOptions = {}): HeapSnapshot {
  const attempts = snapshotAttempts(readOptions(options, 'options', ['attempts']).attempts);
  return diagnoseSelf((d) => heapSnapshotOf(d), attempts);
}

export interface HeapSnapshotOptions {
  /** Snapshots to try for a consistent one (default 5, at most 100), as doctor()'s. */
  attempts?: number;
}

/**
 * A snapshot read back from a file's text (or the value JSON.parse made of
 * it). Throws ERR_NOT_A_SNAPSHOT or ERR_SNAPSHOT_VERSION.
 */
export function readHeapSnapshot(input: unknown): HeapSnapshot {
  return withViews(parseHeapSnapshot(input));
}

/** What changed from `a` to `b` (each a snapshot, or what readHeapSnapshot takes). */
export function diffHeapSnapshots(a: unknown, b: unknown): HeapDiff {
  return withDocumentViews(diffSnapshots(parseHeapSnapshot(a), parseHeapSnapshot(b)), () => snapshotViews.views.diff);
}
