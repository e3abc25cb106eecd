// Another glibc process's allocator, read without stopping it: the same
// decoders and results as for this process (allocator-state.ts), over
// copies made with process_vm_readv.
import { layoutFor } from '../allocator/layouts';
import { libcDataRegions } from '../allocator/libc-data';
import { LibcFile, libcFileOf } from '../allocator/libc-file';
import {
  arenasResult, ArenasResult, binsResult, BinsResult, chunkPlacesResult, ChunkPlacesResult, Decoded, decodedTotalsResult,
  DecodedTotalsResult, decodeSnapshot, mallocParamsResult, MallocParamsResult, tcachesResult, TcachesResult, VisResult, visResult,
} from '../allocator/results';
import { readVisOptions, VisOptions } from '../allocator/vis';
import { HeapscopeError, rangeError, typeError } from '../errors';
import { hex } from '../format';
import { classifiedMap, MapsOptions, MemoryRegion, parseMaps, parseSettled } from '../maps';
import { describe, ownKeys, readOptions, toIndex } from '../validate';
import { heapWalkData } from '../walk/build';
import { HeapWalk, walkArena, WalkOptions } from '../walk/index';
import { requireGlibcMalloc } from './malloc-kind';
import { libcIdentityOf } from './libc-identity';
import { isKernelThread, PID_MAX, readCmdline, readProcFile, readStatus } from './proc';
import { readRanges } from './read-ranges';
import { remoteDiagnosis } from './doctor';
import { doctorResult } from '../doctor/index';
import { HeapSnapshot, heapSnapshotOf } from '../heap-snapshot/index';
import type { DoctorResult } from '../doctor/index';
import { takeHeaderSnapshot } from './header-snapshot';
import { RemoteSnapshot, takeRemoteSnapshot } from './snapshot';
import { releaseCopies, snapshotAttempts } from '../allocator/take-snapshot';

export type { RemoteSnapshot };

export interface RemoteSnapshotOptions {
  /** Copies to try for one that stood still (default 10, at most 100). */
  attempts?: number;
}

/** Another process, attached to. Each method without a snapshot takes one now. */
export interface AttachedProcess {
  readonly pid: number;
  /** Its arguments when attached (/proc/PID/cmdline), the program first. */
  readonly cmdline: readonly string[];
  /** The target's glibc, from the banner of the libc it maps, read in its memory. */
  readonly glibc: string;
  /** The libc file it maps, and a name that opens it where one was found (see libcFileOf). */
  readonly libc: LibcFile;
  /** The target's map now, classified as maps() classifies this process's; `{ rss: true }` reads smaps for resident sizes. */
  maps(options?: MapsOptions): MemoryRegion[];
  snapshot(options?: RemoteSnapshotOptions): RemoteSnapshot;
  arenas(snapshot?: RemoteSnapshot): ArenasResult;
  mallocParams(snapshot?: RemoteSnapshot): MallocParamsResult;
  bins(snapshot?: RemoteSnapshot): BinsResult;
  tcaches(snapshot?: RemoteSnapshot): TcachesResult;
  chunkPlaces(snapshot?: RemoteSnapshot): ChunkPlacesResult;
  /** The decode's totals. No mallinfo2() of another process exists to compare them with. */
  allocatorTotals(snapshot?: RemoteSnapshot): DecodedTotalsResult;
  /** Its chunks as raw lines with header, links and place, as vis() shows this process's. */
  vis(options?: VisOptions, snapshot?: RemoteSnapshot): VisResult;
  /**
   * Where its memory is and what to do about it (see doctor()): its smaps
   * and pagemap are read now, then the snapshot is taken (unless one is
   * given: what this attached process's snapshot() returned, or
   * `{ attempts }` for the one taken now). It cannot be trimmed from here.
   */
  doctor(snapshot?: RemoteSnapshot | RemoteSnapshotOptions): DoctorResult;
  /**
   * Every chunk of every arena with its place, as walkHeap() walks this
   * process; `mallinfoTotals` is the walk's own mallinfo2() (no other
   * process's mallinfo2() can be called, so `checks` is empty).
   */
  walk(options?: RemoteWalkOptions): HeapWalk;
  /**
   * Its decoded state now, in the format `heapscope snapshot --pid` writes
   * (see heapSnapshot()): its smaps and pagemap, then a snapshot taken now.
   */
  heapSnapshot(options?: RemoteSnapshotOptions): HeapSnapshot;
}

/** attach(pid).walk()'s options: walkHeap's `arena`, and a snapshot to walk instead of taking one now. */
export interface RemoteWalkOptions extends Pick<WalkOptions, 'arena'> {
  snapshot?: RemoteSnapshot;
}

/** `options.attempts` of a snapshot of another process: 10 when absent (its threads run on while it is copied). */
function attemptsOf(options: RemoteSnapshotOptions | undefined): number {
  return snapshotAttempts(readOptions(options, 'options', ['attempts']).attempts, 10);
}

/**
 * `{ attempts }` of doctor() and heapSnapshot(), which a snapshot (any
 * snapshot: it has an own `attempts`) could be mistaken for: an object with
 * any other own key (a symbol, a non-enumerable one) goes to `refuse`
 * before any value is read, never read as options.
 */
function strictAttempts(value: unknown, refuse: (value: unknown) => never): number {
  if (value !== undefined && ownKeys(value, 'options').some((key) => key !== 'attempts')) refuse(value);
  return attemptsOf(value as RemoteSnapshotOptions | undefined);
}

/**
 * Attaches to process `pid` (nothing is stopped or changed in it): checks
 * that glibc's malloc serves it and that its memory can be read, and finds
 * its glibc version. Throws ERR_PROCESS_EXITED, ERR_PERMISSION,
 * ERR_NOT_GLIBC_MALLOC or ERR_UNKNOWN_GLIBC_LAYOUT.
 */
export function attach(pid: number): AttachedProcess {
  if (typeof pid !== 'number') throw typeError(`pid must be a number, got ${describe(pid)}`);
  const id = toIndex(pid, 'pid', PID_MAX);
  if (id < 1) throw rangeError(`pid must be at least 1, got ${pid}`);
  const status = readStatus(id);
  const regions = parseSettled(() => readProcFile(id, 'maps'), parseMaps);
  if (regions.length === 0) {
    if (isKernelThread(id)) throw new HeapscopeError('ERR_NOT_GLIBC_MALLOC', `process ${id} (${status.name}) is a kernel thread: it maps no memory`);
    throw new HeapscopeError('ERR_PROCESS_EXITED', `process ${id} (${status.name}) is exiting: its memory is already gone`);
  }
  requireGlibcMalloc(id, status.name, regions);
  const { version: glibc, buildId } = libcIdentityOf(id, regions, libcDataRegions(regions)[0]);
  const libc = libcFileOf(regions, id, buildId)!;
  const layout = layoutFor(glibc);
  const cmdline = Object.freeze(readCmdline(id));

  const decoded = new WeakMap<RemoteSnapshot, Decoded | undefined>();
  const take = (options: RemoteSnapshotOptions = {}): RemoteSnapshot => {
    const s = takeRemoteSnapshot(id, layout, libc, attemptsOf(options));
    decoded.set(s, undefined);
    return s;
  };
  const isOurs = (snapshot: unknown): snapshot is RemoteSnapshot => decoded.has(snapshot as RemoteSnapshot);
  /** A refusal of an argument that is not `expected`, naming what it is. */
  const refuse = (expected: string) => (value: unknown): never => {
    throw typeError(`${expected}, got ${describe(value)}`);
  };
  const notOurs = refuse("snapshot must be what this attached process's snapshot() returned");
  const neitherOursNorOptions = refuse("doctor() takes what this attached process's snapshot() returned, or options with attempts only");
  const notOptions = refuse('options may hold attempts only (heapSnapshot() takes no snapshot)');
  const stateOf = (snapshot: RemoteSnapshot | undefined): { s: RemoteSnapshot; d: Decoded } => {
    if (snapshot !== undefined && !isOurs(snapshot)) notOurs(snapshot);
    const s = snapshot ?? take();
    let d = decoded.get(s);
    if (d === undefined) {
      d = decodeSnapshot(s);
      decoded.set(s, d);
    }
    return { s, d };
  };
  // What doctor() and heapSnapshot() decode: the chunk headers only (header-snapshot.ts), or a whole copy where those cannot serve.
  const headerState = (attempts: number) => (): { s: RemoteSnapshot; d: Decoded } => {
    const spent = { copies: 0 };
    const header = takeHeaderSnapshot(id, layout, libc, attempts, spent);
    if (header !== undefined) return header;
    // What the header copies spent comes off `attempts`, and is counted in the whole copy's.
    const s = take({ attempts: attempts - spent.copies });
    s.attempts += spent.copies;
    return stateOf(s);
  };
  /** doctor()'s argument: a snapshot of ours, or `{ attempts }`; anything else is refused as every method refuses a snapshot not of ours. */
  const doctorArgument = (arg: unknown): { snapshot?: RemoteSnapshot; attempts: number } => {
    if (arg === undefined || isOurs(arg)) return { snapshot: arg, attempts: 10 };
    return { attempts: strictAttempts(arg, neitherOursNorOptions) };
  };
  /**
   * `use` of the state of `snapshot`, or of one `take` takes when `use`
   * asks, whose copies then go back as soon as `use` returns (what each
   * call builds keeps figures, never a copy's bytes: the decode reads every
   * column it needs from the copy as it is made), not when Node's event
   * loop next turns.
   */
  const withState = <T>(
    snapshot: RemoteSnapshot | undefined, take: () => { s: RemoteSnapshot; d: Decoded }, use: (state: () => { s: RemoteSnapshot; d: Decoded }) => T,
  ): T => {
    if (snapshot !== undefined) return use(() => stateOf(snapshot));
    let taken: RemoteSnapshot | undefined;
    try {
      return use(() => {
        const state = take();
        taken = state.s;
        return state;
      });
    } finally {
      if (taken !== undefined) releaseCopies(taken);
    }
  };
  /** A whole copy of the allocator, taken now. */
  const whole = () => stateOf(undefined);
  const mapsOf = (options: MapsOptions = {}) => classifiedMap(options, (rss) => readProcFile(id, rss ? 'smaps' : 'maps'),
    (ranges) => readRanges(id, ranges).map((r) => (r.errno === 0 ? r.bytes : undefined)));
  return Object.freeze({
    pid: id,
    cmdline,
    glibc,
    libc,
    maps: mapsOf,
    snapshot: take,
    arenas: (snapshot?: RemoteSnapshot) => withState(snapshot, whole, (state) => arenasResult(state().d)),
    mallocParams: (snapshot?: RemoteSnapshot) => withState(snapshot, whole, (state) => {
      const { s, d } = state();
      return mallocParamsResult(s, d);
    }),
    bins: (snapshot?: RemoteSnapshot) => withState(snapshot, whole, (state) => binsResult(state().d)),
    tcaches: (snapshot?: RemoteSnapshot) => withState(snapshot, whole, (state) => tcachesResult(state().d)),
    chunkPlaces: (snapshot?: RemoteSnapshot) => withState(snapshot, whole, (state) => chunkPlacesResult(state().d)),
    allocatorTotals: (snapshot?: RemoteSnapshot) => withState(snapshot, whole, (state) => decodedTotalsResult(state().d)),
    vis: (options?: VisOptions, snapshot?: RemoteSnapshot) => {
      const read = readVisOptions(options);
      return withState(snapshot, whole, (state) => {
        const { s, d } = state();
        return visResult(d, s.image, read);
      });
    },
    doctor: (arg?: RemoteSnapshot | RemoteSnapshotOptions) => {
      const { snapshot, attempts } = doctorArgument(arg);
      return withState(snapshot, headerState(attempts), (state) => doctorResult(remoteDiagnosis({ pid: id, cmdline, glibc }, () => mapsOf({ rss: true }), state).data));
    },
    heapSnapshot: (options?: RemoteSnapshotOptions) => {
      const attempts = strictAttempts(options, notOptions);
      return withState(undefined, headerState(attempts), (state) => heapSnapshotOf(remoteDiagnosis({ pid: id, cmdline, glibc }, () => mapsOf({ rss: true }), state)));
    },
    walk: (options: RemoteWalkOptions = {}) => {
      const o = readOptions(options, 'options', ['arena', 'snapshot']);
      const arena = walkArena(o.arena);
      return withState(o.snapshot as RemoteSnapshot | undefined, whole, (state) =>
        new HeapWalk(heapWalkData(state().d, { mainOnly: arena === 'main', steps: [], pid: id })));
    },
  });
}
