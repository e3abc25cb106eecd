// The walk's own mallinfo2(): summed as glibc's int_mallinfo sums it, but
// from the places of the chunks the walk met, not from the bin lists, so
// that a chunk the walk calls free but no list holds (or the other way
// round) shows as a difference. Per arena:
//   ordblks += 1 + chunks in the unsorted, small and large bins
//   smblks, fsmblks += fastbin chunks, bytes
//   fordblks += top + those bins' bytes + fastbin bytes
//   arena += system_mem;  uordblks += system_mem − that
// and from main_arena and mp_: keepcost (its top), hblks and hblkhd.
import type { Arena } from '../allocator/arenas';
import type { MallocPar } from '../allocator/decode';
import { MallinfoTotals, TOTALLED_FIELDS, TotalledField } from '../allocator/totals';
import type { Mallinfo } from '../stats';
import type { HeapRegionWalk } from './heap-walk';

/** One field of mallinfo2() against the walk's total of it. */
export interface MallinfoCheck {
  field: TotalledField;
  mallinfo: number;
  walk: number;
  /** mallinfo − walk. */
  difference: number;
  equal: boolean;
}

/** The mallinfo2() fields as the walk's chunks make them up; `regions` must be every region of every arena. */
export function walkMallinfo(arenas: readonly Arena[], regions: readonly HeapRegionWalk[], par: MallocPar): MallinfoTotals {
  const total: MallinfoTotals = { arena: 0, ordblks: 0, smblks: 0, hblks: par.nMmaps, hblkhd: Number(par.mmappedMem), uordblks: 0, fsmblks: 0, fordblks: 0, keepcost: 0 };
  for (const a of arenas) {
    let avail = 0;
    total.ordblks += 1;
    for (const r of regions) {
      if (r.arena !== a.address) continue;
      const p = r.totals.places;
      total.ordblks += p.unsorted.count + p.smallbin.count + p.largebin.count;
      total.smblks += p.fastbin.count;
      total.fsmblks += p.fastbin.size;
      avail += p.top.size + p.unsorted.size + p.smallbin.size + p.largebin.size + p.fastbin.size;
      if (a.kind === 'main') total.keepcost += p.top.size;
    }
    total.arena += Number(a.systemMem);
    total.fordblks += avail;
    total.uordblks += Number(a.systemMem) - avail;
  }
  return total;
}

/** Every totalled field of `mallinfo` against the walk's, in glibc's field order. */
export function mallinfoChecks(walk: MallinfoTotals, mallinfo: Mallinfo): MallinfoCheck[] {
  return TOTALLED_FIELDS.map((field) => ({
    field, mallinfo: mallinfo[field], walk: walk[field], difference: mallinfo[field] - walk[field], equal: mallinfo[field] === walk[field],
  }));
}
