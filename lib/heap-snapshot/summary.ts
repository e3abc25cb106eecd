// A snapshot in a few figures, summed over its arenas (pure): what watch
// shows each tick. In use leaves the tcache out (its chunks are free to
// the program); free is every free place, tcache included; top apart.
import type { Counted, HeapSnapshotData } from './types';
import { FREE_PLACES } from './types';

export interface SnapshotSummary {
  arenas: number;
  inUse: Counted;
  free: Counted;
  top: number;
  /** Mmapped chunks found. */
  mmapped: Counted;
  /** The process's resident bytes (smaps). */
  rss: number;
}

export function summarize(s: HeapSnapshotData): SnapshotSummary {
  const sum = (pick: (a: HeapSnapshotData['arenas'][number]) => Counted): Counted => s.arenas.reduce((t, a) => {
    const c = pick(a);
    return { count: t.count + c.count, bytes: t.bytes + c.bytes };
  }, { count: 0, bytes: 0 });
  return {
    arenas: s.arenas.length,
    inUse: sum((a) => a.inUse),
    free: sum((a) => FREE_PLACES.reduce((t, p) => ({ count: t.count + a.free[p].count, bytes: t.bytes + a.free[p].bytes }), { count: 0, bytes: 0 })),
    top: s.arenas.reduce((n, a) => n + a.top, 0),
    mmapped: { count: s.mmapped.count, bytes: s.mmapped.bytes },
    rss: s.rss.total,
  };
}
