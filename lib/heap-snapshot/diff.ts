// What changed between two snapshots (pure): each figure of both, side by
// side, so that every number a view prints is one of the two files'. Arenas
// are matched by address (main_arena with main_arena); an arena in one only
// has zeros on the other side.
import { RSS_KINDS } from '../doctor/rss';
import type { RssKind } from '../doctor/types';
import { Counted, FREE_PLACES, FreePlace, HeapSnapshotData, SizeClassCounts, SnapshotArena, SnapshotMmapped } from './types';
import type { MallinfoTotals } from '../allocator/totals';
import { own } from '../validate';

/** A figure in the first snapshot (`a`) and in the second (`b`). */
export interface Pair<T> {
  a: T;
  b: T;
}

export interface ClassDiff {
  min: number;
  max: number | null;
  inUse: Pair<Counted>;
  free: Record<FreePlace, Pair<Counted>>;
}

export interface ArenaDiff {
  /** Its address in the first snapshot (the second's, when it appeared). */
  address: bigint;
  kind: 'main' | 'thread';
  /** In both snapshots, or only in the second (appeared) or the first (disappeared). */
  status: 'both' | 'appeared' | 'disappeared';
  systemMem: Pair<number>;
  inUse: Pair<Counted>;
  free: Record<FreePlace, Pair<Counted>>;
  top: Pair<number>;
  rss: Pair<number>;
  /**
   * A non-contiguous main_arena's memory outside [heap] (SnapshotArena's
   * `outsideHeap`), when either file has it; null on a side whose file has
   * none: the arena was contiguous then, or the file was written before the
   * figure was kept, which the file cannot tell apart.
   */
  outsideHeap?: Pair<number | null>;
  /** The size classes whose counts changed, smallest first. */
  classes: ClassDiff[];
  /** Size classes with chunks in either snapshot. */
  classesSeen: number;
}

/** Which process and moment a snapshot is. */
export interface DiffSide {
  takenAt: string;
  pid: number;
  cmdline: string[];
  glibc: string;
  consistent: boolean;
  reason?: string;
}

export interface HeapDiffData {
  a: DiffSide;
  b: DiffSide;
  /** Same pid and command line: most likely the same process. */
  sameProcess: boolean;
  /** b's takenAt − a's, in milliseconds. */
  elapsed: number;
  arenas: ArenaDiff[];
  mmapped: Pair<SnapshotMmapped>;
  /** Resident memory by kind (thread arenas' heaps summed into one row). */
  rss: { total: Pair<number>; rows: { kind: RssKind; count: Pair<number>; size: Pair<number>; rss: Pair<number> }[] };
  totals: Pair<MallinfoTotals>;
}

const NONE: Counted = { count: 0, bytes: 0 };
const pair = <T>(a: T, b: T): Pair<T> => ({ a, b });
const changed = (p: Pair<Counted>) => p.a.count !== p.b.count || p.a.bytes !== p.b.bytes;

function side(s: HeapSnapshotData): DiffSide {
  const { pid, cmdline, glibc } = s.process;
  return { takenAt: s.takenAt, pid, cmdline, glibc, consistent: s.copy.consistent, ...(own(s.copy, 'reason') === undefined ? {} : { reason: s.copy.reason }) };
}

function classDiffs(a: readonly SizeClassCounts[], b: readonly SizeClassCounts[]): { classes: ClassDiff[]; seen: number } {
  const byMin = new Map<number, Pair<SizeClassCounts | undefined>>();
  for (const c of a) byMin.set(c.min, { a: c, b: undefined });
  for (const c of b) byMin.set(c.min, { a: byMin.get(c.min)?.a, b: c });
  const classes = [...byMin.entries()].sort(([x], [y]) => x - y).map(([min, p]): ClassDiff => ({
    min,
    max: (p.a ?? p.b)!.max,
    inUse: pair(p.a?.inUse ?? NONE, p.b?.inUse ?? NONE),
    free: Object.fromEntries(FREE_PLACES.map((f) => [f, pair(p.a?.[f] ?? NONE, p.b?.[f] ?? NONE)])) as ClassDiff['free'],
  }));
  return { classes: classes.filter((c) => changed(c.inUse) || FREE_PLACES.some((f) => changed(c.free[f]))), seen: byMin.size };
}

const EMPTY_ARENA: Omit<SnapshotArena, 'address' | 'kind'> = {
  heaps: 0, systemMem: 0, inUse: NONE, free: Object.fromEntries(FREE_PLACES.map((p) => [p, NONE])) as SnapshotArena['free'],
  top: 0, fenceposts: NONE, unlisted: NONE, rss: 0, classes: [],
};

/** A's and b's outsideHeap, null for a file without one; nothing when neither has it. */
function outsideHeapPair(a: number | undefined, b: number | undefined): { outsideHeap?: Pair<number | null> } {
  return a === undefined && b === undefined ? {} : { outsideHeap: pair(a ?? null, b ?? null) };
}

function arenaDiff(a: SnapshotArena | undefined, b: SnapshotArena | undefined): ArenaDiff {
  const known = (a ?? b)!;
  const x = a ?? { ...EMPTY_ARENA, address: known.address, kind: known.kind };
  const y = b ?? { ...EMPTY_ARENA, address: known.address, kind: known.kind };
  const { classes, seen } = classDiffs(x.classes, y.classes);
  return {
    address: known.address,
    kind: known.kind,
    status: a === undefined ? 'appeared' : b === undefined ? 'disappeared' : 'both',
    systemMem: pair(x.systemMem, y.systemMem),
    inUse: pair(x.inUse, y.inUse),
    free: Object.fromEntries(FREE_PLACES.map((p) => [p, pair(x.free[p], y.free[p])])) as ArenaDiff['free'],
    top: pair(x.top, y.top),
    rss: pair(x.rss, y.rss),
    ...outsideHeapPair(own(x, 'outsideHeap'), own(y, 'outsideHeap')),
    classes,
    classesSeen: seen,
  };
}

function rssByKind(s: HeapSnapshotData): Map<RssKind, { count: number; size: number; rss: number }> {
  const rows = new Map<RssKind, { count: number; size: number; rss: number }>();
  for (const r of s.rss.rows) {
    const row = rows.get(r.kind) ?? { count: 0, size: 0, rss: 0 };
    rows.set(r.kind, { count: row.count + r.count, size: row.size + r.size, rss: row.rss + r.rss });
  }
  return rows;
}

/** main_arena matches main_arena (libc may sit elsewhere in another run); a thread arena matches the one at its address. */
const matchKey = (x: SnapshotArena) => (x.kind === 'main' ? 'main' : x.address);

/** What changed from `a` to `b`: arenas in a's order, then those that appeared in b's. */
export function diffSnapshots(a: HeapSnapshotData, b: HeapSnapshotData): HeapDiffData {
  const inB = new Map(b.arenas.map((x) => [matchKey(x), x]));
  const inA = new Set(a.arenas.map(matchKey));
  const arenas = [
    ...a.arenas.map((x) => arenaDiff(x, inB.get(matchKey(x)))),
    ...b.arenas.filter((x) => !inA.has(matchKey(x))).map((x) => arenaDiff(undefined, x)),
  ];
  const ra = rssByKind(a);
  const rb = rssByKind(b);
  const zero = { count: 0, size: 0, rss: 0 };
  const kinds = RSS_KINDS.filter((k) => ra.has(k) || rb.has(k));
  const rows = kinds.map((kind) => {
    const x = ra.get(kind) ?? zero;
    const y = rb.get(kind) ?? zero;
    return { kind, count: pair(x.count, y.count), size: pair(x.size, y.size), rss: pair(x.rss, y.rss) };
  });
  return {
    a: side(a),
    b: side(b),
    sameProcess: a.process.pid === b.process.pid && a.process.cmdline.join('\0') === b.process.cmdline.join('\0'),
    elapsed: Date.parse(b.takenAt) - Date.parse(a.takenAt),
    arenas,
    mmapped: pair(a.mmapped, b.mmapped),
    rss: { total: pair(a.rss.total, b.rss.total), rows },
    totals: pair(a.totals, b.totals),
  };
}
