// A heap snapshot from one diagnosis and the decode it came from (pure):
// the doctor's figures per arena, for RSS and mmapped chunks, and each
// placed chunk counted into its arena's size class and place.
import type { Decoded } from '../allocator/results';
import { PLACE_KINDS, placeColumns } from '../allocator/places';
import type { PlaceKind, RegionPlaces } from '../allocator/places';
import type { DoctorData } from '../doctor/types';
import { binIndex, binRange, MIN_LARGE_SIZE } from '../size-classes';
import type { Mallinfo } from '../stats';
import { Counted, FREE_PLACES, FreePlace, HeapSnapshotData, SizeClassCounts, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, SnapshotArena } from './types';

/** The size class a chunk size counts in: its small bin's one size, or its large bin's range. */
export function classOf(size: number): { min: number; max: number | null } {
  if (size < MIN_LARGE_SIZE) return { min: size, max: size };
  const range = binRange(binIndex(size));
  return { min: range.min, max: range.max ?? null };
}

const zero = (): Counted => ({ count: 0, bytes: 0 });
const add = (c: Counted, size: number) => {
  c.count++;
  c.bytes += size;
};

/** What each place counts as in a snapshot. */
const BUCKET: Record<PlaceKind, 'inUse' | FreePlace | 'top' | 'fenceposts' | 'unlisted'> = {
  'in-use': 'inUse',
  'tcache-struct': 'inUse',
  tcache: 'tcache',
  fastbin: 'fastbin',
  unsorted: 'unsorted',
  smallbin: 'smallbin',
  largebin: 'largebin',
  top: 'top',
  fencepost: 'fenceposts',
  unlisted: 'unlisted',
};

type ArenaCounts = Pick<SnapshotArena, 'inUse' | 'free' | 'fenceposts' | 'unlisted' | 'classes'>;

/** Every chunk of the arena's regions, counted by place and size class (top left out: the arena says its size). */
export function countChunks(regions: readonly RegionPlaces[]): ArenaCounts {
  const free = Object.fromEntries(FREE_PLACES.map((p) => [p, zero()])) as Record<FreePlace, Counted>;
  const counts: ArenaCounts = { inUse: zero(), free, fenceposts: zero(), unlisted: zero(), classes: [] };
  const classes = new Map<number, SizeClassCounts>();
  for (const r of regions) {
    const { places, walk } = placeColumns(r);
    const { offsets } = walk.walk.table;
    for (let i = 0; i < places.length; i++) {
      const size = offsets[i + 1] - offsets[i];
      const bucket = BUCKET[PLACE_KINDS[places[i]]];
      if (bucket === 'top') continue;
      if (bucket === 'fenceposts' || bucket === 'unlisted') {
        add(counts[bucket], size);
        continue;
      }
      add(bucket === 'inUse' ? counts.inUse : counts.free[bucket], size);
      const range = classOf(size);
      let entry = classes.get(range.min);
      if (entry === undefined) classes.set(range.min, entry = { ...range });
      add(entry[bucket] ??= zero(), size);
    }
  }
  // The same key order in every entry: min, max, inUse, then the free places.
  const order = ['inUse', ...FREE_PLACES] as const;
  counts.classes = [...classes.values()].sort((a, b) => a.min - b.min)
    .map((c) => Object.assign({ min: c.min, max: c.max }, ...order.filter((k) => c[k] !== undefined).map((k) => ({ [k]: c[k] }))));
  return counts;
}

/** The snapshot of what `diagnosis` and `decoded` saw; `takenAt` is when the copy was made. */
export function buildHeapSnapshot(diagnosis: DoctorData, decoded: Decoded, takenAt: Date, mallinfo?: Mallinfo): HeapSnapshotData {
  const { state, info } = decoded;
  const par = state.params.values;
  const d = diagnosis;
  return {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    takenAt: takenAt.toISOString(),
    process: { pid: d.pid, self: d.self, cmdline: d.cmdline, glibc: d.glibc, threads: d.threads, pageSize: d.pageSize },
    params: { ...d.params, tcacheCount: Number(par.tcacheCount), tcacheBins: Number(par.tcacheBins) },
    arenas: d.arenas.map((a): SnapshotArena => {
      const c = countChunks(state.placement.regions.filter((r) => r.arena === a.arena));
      return {
        address: a.arena, kind: a.kind, heaps: a.heaps, systemMem: a.systemMem, inUse: c.inUse, free: c.free, top: a.top,
        fenceposts: c.fenceposts, unlisted: c.unlisted, rss: a.rss, ...(a.outsideHeap === undefined ? {} : { outsideHeap: a.outsideHeap.bytes }), classes: c.classes,
      };
    }),
    mmapped: { count: d.mmapped.found, bytes: d.mmapped.bytes, resident: d.mmapped.resident, nMmaps: d.mmapped.nMmaps, mmappedMem: d.mmapped.mmappedMem },
    rss: d.rss,
    totals: d.totals,
    ...(mallinfo === undefined ? {} : { mallinfo }),
    copy: info,
    incomplete: d.incomplete,
  };
}
