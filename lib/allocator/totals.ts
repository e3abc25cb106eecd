// The decode's own totals, summed as glibc's int_mallinfo sums them, so
// that in a quiet process every field of mallinfo2() can be checked:
//   avail    = chunksize (top) + bytes in bins 1–127 + bytes in fastbins
//   ordblks += 1 + chunks in bins 1–127;   smblks/fsmblks: fastbin chunks/bytes
//   arena   += system_mem;  fordblks += avail;  uordblks += system_mem − avail
//   main_arena only: hblks = mp_.n_mmaps, hblkhd = mp_.mmapped_mem,
//   keepcost = chunksize (main_arena.top).
// tcache chunks are not free to mallinfo: they count in uordblks.
import { hex } from '../format';
import { Mallinfo } from '../stats';
import { own } from '../validate';
import { Arena } from './arenas';
import { binBytes } from './bin-chunks';
import { ArenaBins } from './bins';
import { MallocPar } from './decode';

/** The mallinfo2 fields the decode can total (usmblks is always 0 in glibc). */
export const TOTALLED_FIELDS = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'uordblks', 'fsmblks', 'fordblks', 'keepcost'] as const;
export type TotalledField = (typeof TOTALLED_FIELDS)[number];

export type MallinfoTotals = Record<TotalledField, number>;

export interface ArenaTotals {
  arena: bigint;
  systemMem: number;
  top: number;
  /** Chunks and bytes in the unsorted, small and large bins. */
  binned: { count: number; bytes: number };
  fastbins: { count: number; bytes: number };
  /** What mallinfo calls free in this arena: top + binned + fastbins. */
  avail: number;
}

export interface DecodedTotals {
  perArena: ArenaTotals[];
  total: MallinfoTotals;
  /** Why the totals may be short (a list that stopped early, a top that could not be read); empty when complete. */
  incomplete: string[];
}

export interface MallinfoMismatch {
  field: TotalledField;
  mallinfo: number;
  decoded: number;
  /** mallinfo − decoded. */
  difference: number;
}

/** Totals of the decoded arenas and their bins, as int_mallinfo would compute them. */
export function decodedTotals(arenas: readonly Arena[], bins: readonly ArenaBins[], par: MallocPar): DecodedTotals {
  const total: MallinfoTotals = { arena: 0, ordblks: 0, smblks: 0, hblks: 0, hblkhd: 0, uordblks: 0, fsmblks: 0, fordblks: 0, keepcost: 0 };
  const incomplete: string[] = [];
  const perArena = arenas.map((a): ArenaTotals => {
    const b = bins.find((x) => x.arena === a.address);
    const sum = (lists: ArenaBins['fastbins']) => lists.reduce((s, bin) => {
      if (own(bin, 'reason') !== undefined) incomplete.push(`arena ${hex(a.address)} bin ${bin.index}: ${bin.reason}`);
      return { count: s.count + bin.count, bytes: s.bytes + binBytes(bin) };
    }, { count: 0, bytes: 0 });
    const binned = b === undefined ? { count: 0, bytes: 0 } : sum([...b.unsorted, ...b.smallbins, ...b.largebins]);
    const fastbins = b === undefined ? { count: 0, bytes: 0 } : sum(b.fastbins);
    const topSize = own(a.top, 'size');
    if (topSize === undefined) incomplete.push(`arena ${hex(a.address)}: its top chunk's size: ${own(a.top, 'reason')}`);
    const top = Number(topSize ?? 0n);
    const systemMem = Number(a.systemMem);
    const avail = top + binned.bytes + fastbins.bytes;
    total.arena += systemMem;
    total.ordblks += 1 + binned.count;
    total.smblks += fastbins.count;
    total.fsmblks += fastbins.bytes;
    total.fordblks += avail;
    total.uordblks += systemMem - avail;
    if (a.kind === 'main') {
      total.hblks = par.nMmaps;
      total.hblkhd = Number(par.mmappedMem);
      total.keepcost = top;
    }
    return { arena: a.address, systemMem, top, binned, fastbins, avail };
  });
  return { perArena, total, incomplete };
}

/** Each field where mallinfo2() and the decode differ, with the difference. */
export function compareMallinfo(decoded: MallinfoTotals, mallinfo: Mallinfo): MallinfoMismatch[] {
  return TOTALLED_FIELDS.filter((f) => mallinfo[f] !== decoded[f])
    .map((field) => ({ field, mallinfo: mallinfo[field], decoded: decoded[field], difference: mallinfo[field] - decoded[field] }));
}
