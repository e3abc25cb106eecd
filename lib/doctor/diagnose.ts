// One diagnosis from one decoded snapshot and what was read beside it
// (smaps, pagemap, headers of anonymous mappings), whichever process it
// is: doctor() builds the source for this one, attach(pid).doctor() for another.
import os from 'node:os';
import type { Decoded } from '../allocator/results';
import type { GlibcLayout } from '../allocator/layouts';
import { heapMaxSize } from '../allocator/arenas';
import { binnedRuns, cachedBytes, inUseAtLeast, listedChunks, unwalkedRuns } from '../allocator/listed';
import type { LibcFile } from '../allocator/libc-file';
import type { AddressRange } from '../allocator/locate-input';
import { keptBytes } from '../fresh-memory';
import { HUGE_PAGES_PATH, MemoryRegion } from '../maps';
import { readRanges } from '../remote/read-ranges';
import type { Mallinfo } from '../stats';
import { diagnoseArenas } from './arenas';
import { doctorAdvice, doctorFindings } from './findings';
import { chunkCandidates, findMmappedChunks, FoundMmapped, HeaderReader } from './mmapped';
import { initialParams, paramsInForce } from './params';
import { PagemapReader, readResidency, Residency, residencyRanges } from './residency';
import { rssRows } from './rss';
import { planTrim, trimInHugePages } from './trim';
import type { ArenaDiagnosis, DoctorData, MmappedChunks, V8Heap } from './types';
import { own } from '../validate';

export interface DoctorSource {
  pid: number;
  self: boolean;
  cmdline: string[];
  glibc: string;
  layout: GlibcLayout;
  libc: LibcFile;
  /** [heap] as copied: up to the break. */
  heap?: AddressRange;
  decoded: Decoded;
  mallinfo?: Mallinfo;
  /** The map with resident sizes (smaps). */
  regions: MemoryRegion[];
  /** What was read before the snapshot (readBeforeSnapshot). */
  before: BeforeSnapshot;
  pageSize: number;
  threads: number;
  v8?: V8Heap;
  /** Whether the kernel takes MADV_DONTNEED on huge pages (Linux 5.18 on: hugeDontneed()). */
  hugeDontneed: boolean;
}

const headerBytes = keptBytes();

/** The mmapped chunks (glibc lists them nowhere) and what was resident, read before the snapshot. */
export interface BeforeSnapshot {
  mmapped: FoundMmapped;
  /** See residency.ts. */
  residency: Residency;
}

/**
 * Read of process `pid` (this one's own included) before the snapshot,
 * whose copy can make what it reads resident (residency.ts): the mmapped
 * chunks' headers, found through `regions` (the map just read), then the
 * residency of what doctor looks up. `layout`: the target's glibc's.
 */
export function readBeforeSnapshot(
  pid: number, layout: GlibcLayout, regions: readonly MemoryRegion[], pageSize: number, pagemap: PagemapReader, counted?: { count: number; bytes: number },
): BeforeSnapshot {
  // Into memory the addon mapped: a Buffer for each 16 bytes took ~400 bytes
  // of malloc's, in use in this process's heap when its snapshot copied it.
  // As anonymous memory: a page never written reads as zeros, no header,
  // and is not read (a read can make it resident: untouched.cc), so the
  // search through pages nobody wrote leaves the residency read next alone.
  const readHeaders: HeaderReader = (addresses) => readRanges(pid, addresses.map((address) => ({ address, length: 16n, anonymous: true })), headerBytes(16 * addresses.length))
    .map((r) => (r.errno === 0 ? r.bytes : undefined));
  const mmapped = findMmappedChunks(chunkCandidates(regions, pageSize), pageSize, layout.mmappedTail, readHeaders, counted);
  return { mmapped, residency: readResidency(pagemap, residencyRanges(regions, mmapped.chunks), pageSize) };
}

/**
 * [heap]'s bytes that main_arena never took (DoctorData's
 * ArenaDiagnosis.foreignSbrk): below mp_.sbrk_base, and past the double
 * fencepost its walk ended in short of the break. Resident: the pages
 * wholly inside them.
 */
function foreignSbrk(walks: Decoded['state']['walks'], sbrkBase: bigint, residency: Residency, pageSize: number): ArenaDiagnosis['foreignSbrk'] {
  const heap = walks.find((w) => w.kind === 'heap');
  if (heap === undefined) return undefined;
  const ps = BigInt(pageSize);
  const below = sbrkBase > heap.start && sbrkBase < heap.end ? sbrkBase - heap.start : 0n;
  const reached = heap.start + BigInt(heap.walk.reached);
  // With a reason, the walk stopped before main_arena's chunks ended (stopsBeforeTop): how far the gap goes is not known.
  const past = heap.walk.ending === 'fencepost' && reached < heap.end && own(heap, 'reason') === undefined ? heap.end - reached : 0n;
  if (below === 0n && past === 0n) return undefined;
  const resident = (below === 0n ? 0 : residency.resident(heap.start, heap.start + (below / ps) * ps)) +
    (past === 0n ? 0 : residency.resident(((reached + ps - 1n) / ps) * ps, heap.end));
  return { below: Number(below), past: Number(past), resident };
}

export function diagnose(src: DoctorSource): DoctorData {
  const { state, info } = src.decoded;
  const par = state.params.values;
  const arenas = state.arenas.arenas;
  // From the lists and the walk's columns: a placed object per chunk would cost more than the rest of the diagnosis.
  const listed = listedChunks(state.bins, state.tcaches.tcaches);
  const walksOf = (a: { address: bigint }) => state.walks.filter((w) => w.arena === a.address);
  const runs = new Map(arenas.map((a) => {
    const walks = walksOf(a);
    const bins = state.bins.find((b) => b.arena === a.address);
    // Outside every arena's walks: a chunk a (corrupt) list of this arena shares with another arena's walk is counted there.
    return [a.address, [...walks.flatMap((w) => binnedRuns(w, listed)), ...(bins === undefined ? [] : unwalkedRuns(bins, state.walks, listed))]];
  }));
  const plan = planTrim(arenas, runs, src.pageSize, src.heap?.end, par.thpPagesize);
  const { residency } = src.before;
  const huge = trimInHugePages(plan.ranges, src.regions.filter((r) => r.path === HUGE_PAGES_PATH), par.hpPagesize ?? 0n, src.hugeDontneed);
  const ranges = huge.ranges.map((r) => ({ ...r, resident: residency.resident(r.start, r.end) }));
  const kept = huge.kept.map((r) => ({ ...r, resident: residency.resident(r.start, r.end) }));
  const found = src.before.mmapped.chunks.map((c) => ({ ...c, resident: residency.resident(c.address, c.address + BigInt(c.size)) }));
  const mmapped: MmappedChunks = {
    found: found.length,
    bytes: found.reduce((n, c) => n + c.size, 0),
    resident: found.reduce((n, c) => n + c.resident, 0),
    nMmaps: par.nMmaps,
    mmappedMem: Number(par.mmappedMem),
    chunks: found,
    unsearched: src.before.mmapped.unsearched,
    searched: src.before.mmapped.searched,
    tail: src.layout.mmappedTail,
  };
  const rss = rssRows(src.regions, arenas, mmapped, src.pageSize, heapMaxSize(src.layout, par), (start, end) => residency.resident(start, end));
  const figures = {
    pid: src.pid,
    self: src.self,
    cmdline: src.cmdline,
    glibc: src.glibc,
    fastbins: src.layout.fastbins,
    pageSize: src.pageSize,
    rss,
    ...(src.v8 === undefined ? {} : { v8: src.v8 }),
    threads: src.threads,
    mmapped,
    arenas: diagnoseArenas(
      arenas, state.bins, state.totals.perArena, new Map(arenas.map((a) => [a.address, cachedBytes(walksOf(a), listed)])), src.regions, rss.rows, ranges,
      foreignSbrk(state.walks, par.sbrkBase, residency, src.pageSize),
    ),
    totals: state.totals.total,
    ...(src.mallinfo === undefined ? {} : { mallinfo: src.mallinfo }),
    params: paramsInForce(state.params, src.layout, initialParams(par, src.layout, src.libc, src.regions), (min) => inUseAtLeast(state.walks, listed, min)),
    trim: {
      pageSize: src.pageSize,
      ranges,
      bytes: ranges.reduce((n, r) => n + Number(r.end - r.start), 0),
      resident: ranges.reduce((n, r) => n + r.resident, 0),
      ...(plan.topReason === undefined ? {} : { topReason: plan.topReason }),
      ...(kept.length === 0 ? {} : {
        hugePagesKept: { bytes: kept.reduce((n, k) => n + Number(k.end - k.start), 0), resident: kept.reduce((n, k) => n + k.resident, 0), ranges: kept },
      }),
    },
    incomplete: [
      ...state.totals.incomplete,
      ...state.walks.flatMap((r) => (own(r, 'reason') === undefined ? [] : [`the walk of ${r.kind} 0x${r.start.toString(16)}: ${r.reason}`])),
    ],
    snapshot: info,
  };
  return { ...figures, findings: doctorFindings(figures), advice: doctorAdvice(figures) };
}

/** Whether this machine's Linux (os.release()) takes MADV_DONTNEED on huge pages: 5.18 and later; false where the release cannot be read. */
export function hugeDontneed(): boolean {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  return m !== null && (Number(m[1]) > 5 || (Number(m[1]) === 5 && Number(m[2]) >= 18));
}
