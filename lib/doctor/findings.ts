// The sentences doctor() says and the advice it gives (pure): each carries
// the figure it rests on, and advice is given only when its figures pass
// the thresholds below.
import { plural, shortBytes } from '../format';
import { MAX_SEARCHED_PAGES } from './mmapped';
import type { Advice, ArenaDiagnosis, DoctorData, ParamsInForce } from './types';

/**
 * Advice thresholds. Arenas: at least two thread arenas (with one,
 * MALLOC_ARENA_MAX=2 changes nothing), together holding at least 16 MiB free
 * that is at least a quarter of what they hold from the system. mmap threshold: risen, and at
 * least 8 MiB of in-use blocks at or above the initial threshold live in the
 * arenas (what the rise moved there). Trim: at least 8 MiB resident would
 * go, and at least a tenth of the process's RSS. Fragmentation finding: an
 * arena with at least 1 MiB free in its bins, half or more of its memory.
 * Memory not malloc's finding: other anonymous memory at least half the RSS.
 */
export const THRESHOLDS = {
  arenaFree: 16 << 20, arenaShare: 0.25,
  largeInHeap: 8 << 20,
  trimResident: 8 << 20, trimShare: 0.1,
  fragmentedBins: 1 << 20, fragmentedShare: 0.5,
  otherShare: 0.5,
} as const;

type Figures = Omit<DoctorData, 'findings' | 'advice' | 'trimmed'>;

const pct = (part: number, whole: number) => `${whole === 0 ? 0 : Math.round((part / whole) * 100)} %`;

export function arenaName(a: { kind: 'main' | 'thread'; arena: bigint }): string {
  return a.kind === 'main' ? 'main_arena' : `thread arena 0x${a.arena.toString(16)}`;
}

const binned = (a: ArenaDiagnosis) => a.bins.fast + a.bins.unsorted + a.bins.small + a.bins.large;

export function doctorFindings(d: Figures): string[] {
  const out: string[] = [];
  const t = d.totals;
  const heapRss = d.rss.rows.filter((r) => r.kind === 'main-heap' || r.kind === 'arena-heaps').reduce((n, r) => n + r.rss, 0);
  const main = d.arenas.find((a) => a.outsideHeap !== undefined);
  const other = d.rss.rows.find((r) => r.kind === 'other-anonymous')?.rss ?? 0;
  const foreign = d.arenas.find((a) => a.foreignSbrk !== undefined)?.foreignSbrk;
  // The regions' names where they and the arenas' memory differ: main_arena's outside [heap], or [heap]'s not main_arena's.
  out.push(`The process has ${shortBytes(d.rss.total)} resident; ${shortBytes(heapRss)} (${pct(heapRss, d.rss.total)}) of it is ` +
    `${main === undefined && foreign === undefined ? "the arenas' memory" : d.arenas.length === 1 ? '[heap]' : "[heap] and the thread arenas' heaps"} and ` +
    `${shortBytes(d.mmapped.resident)} (${pct(d.mmapped.resident, d.rss.total)}) chunks mapped on their own.`);
  if (main?.outsideHeap !== undefined) out.push(outsideHeapFinding(main, main.outsideHeap, d.rss.rows, d.params.hugePages));
  if (foreign !== undefined) out.push(foreignSbrkFinding(foreign));
  if (other > 0 && other >= THRESHOLDS.otherShare * d.rss.total) out.push(otherAnonymousFinding(other, heapRss, d, main?.outsideHeap));
  out.push(`${plural(d.arenas.length, 'arena')} ${d.arenas.length === 1 ? 'holds' : 'hold'} ${shortBytes(t.arena)} from the system: ${shortBytes(t.uordblks)} in use (uordblks) and ` +
    `${shortBytes(t.fordblks)} free (fordblks, ${pct(t.fordblks, t.arena)})${d.fastbins ? `, of which ${shortBytes(t.fsmblks)} in ${plural(t.smblks, 'fastbin chunk')}` : ''}; ` +
    `${plural(t.hblks, 'chunk')} of ${shortBytes(t.hblkhd)} ${t.hblks === 1 ? 'is' : 'are'} mapped on ${t.hblks === 1 ? 'its' : 'their'} own (hblks, hblkhd).`);
  const m = d.mmapped;
  out.push(m.nMmaps === 0 && m.found === 0 && m.mmappedMem === 0 ? 'No chunk is mapped on its own (mp_.n_mmaps 0).' : remapDrift(m, d.glibc, d.pageSize) ?? (m.found === m.nMmaps && m.bytes === m.mmappedMem
    ? (m.nMmaps === 1
      ? `The one mmapped chunk that mp_ counts (${shortBytes(m.mmappedMem)}) was found by its header in anonymous memory; ${shortBytes(m.resident)} of it is resident.`
      : `All ${plural(m.nMmaps, 'mmapped chunk')} that mp_ counts (${shortBytes(m.mmappedMem)}) were found by their headers in anonymous memory; ${shortBytes(m.resident)} of them is resident.`)
    : `${plural(m.found, 'mmapped chunk')} (${shortBytes(m.bytes)}) ${m.found === 1 ? 'was found by its header' : 'were found by their headers'} in anonymous memory, but mp_ counts ${m.nMmaps} (${shortBytes(m.mmappedMem)})` +
      unfound(m.nMmaps - m.found, m)));
  if (d.v8 !== undefined) out.push(v8Finding(d.v8.physical, other));
  const p = d.params;
  if (p.initial === undefined) out.push(`mmap_threshold is ${shortBytes(p.mmapThreshold)}; mp_ as libc initialises it could not be read: ${p.initialReason}.`);
  else if (p.noDynThreshold) {
    out.push(`mmap_threshold is ${shortBytes(p.mmapThreshold)}, ${p.hugePages?.threshold === true
      ? 'set, and equal to mp_.hp_pagesize: from 2.39 glibc.malloc.hugetlb sets it so, unless glibc.malloc.mmap_threshold is given'
      : 'set'} (no_dyn_threshold 1: freeing no longer moves it; libc's initial value is ${shortBytes(p.initial.mmapThreshold)}).`);
  }
  else if (p.raised) out.push(`mmap_threshold rose from ${shortBytes(p.initial.mmapThreshold)} (mp_ in the libc file) to ${shortBytes(p.mmapThreshold)} when a ${shortBytes(p.mmapThreshold)} mmapped chunk was freed; trim_threshold followed, to ${shortBytes(p.trimThreshold)}. ` +
    (p.largeInHeap.count === 0
      ? `No in-use block in the arenas is as big as the initial ${shortBytes(p.initial.mmapThreshold)}.`
      : `${plural(p.largeInHeap.count, 'in-use block')} of ${shortBytes(p.largeInHeap.bytes)} in the arenas ${p.largeInHeap.count === 1 ? 'is' : 'are'} ` +
        `at least the initial ${shortBytes(p.initial.mmapThreshold)}, the size from which malloc maps a chunk on its own when the top chunk cannot serve it.`));
  else out.push(`mmap_threshold is ${shortBytes(p.mmapThreshold)}, as mp_ in the libc file initialises it: no mmapped chunk was freed that raised it.`);
  for (const a of d.arenas) {
    const bins = binned(a);
    if (bins >= THRESHOLDS.fragmentedBins && a.fragmentation >= THRESHOLDS.fragmentedShare) {
      out.push(`${arenaName(a)}: ${shortBytes(a.free)} free of ${shortBytes(a.systemMem)} (${pct(a.free, a.systemMem)}), ${shortBytes(bins)} of it in ${plural(a.freeChunks, 'chunk')} between live ones; the largest is ${shortBytes(a.largestFree)}.`);
    }
  }
  const tr = d.trim;
  const fromTop = tr.ranges.filter((r) => r.source === 'top').reduce((n, r) => n + r.resident, 0);
  out.push(`malloc_trim(0) would release ${shortBytes(tr.bytes)} of address space in ${plural(tr.ranges.length, 'range')}, ${shortBytes(tr.resident)} of it resident now (pagemap): ` +
    `${shortBytes(tr.resident - fromTop)} from whole pages inside free chunks, ${shortBytes(fromTop)} from main_arena's top${tr.topReason === undefined ? '' : ` (${tr.topReason})`}.`);
  const kept = tr.hugePagesKept;
  if (kept !== undefined) {
    out.push(`Not counted: ${shortBytes(kept.bytes)} of whole ${shortBytes(d.pageSize)} pages inside free chunks, in huge pages, ${shortBytes(kept.resident)} of them resident, ` +
      'which malloc_trim(0) madvises but Linux would keep, by its rule: it takes MADV_DONTNEED on huge pages from 5.18 on only, and there only from a start aligned to one ' +
      '(doctor({ trim: true }) measures what stayed).');
  }
  return out;
}

export function doctorAdvice(d: Figures): Advice[] {
  const out: Advice[] = [];
  const threads = d.arenas.filter((a) => a.kind === 'thread');
  const free = threads.reduce((n, a) => n + a.free, 0);
  const system = threads.reduce((n, a) => n + a.systemMem, 0);
  if (threads.length >= 2 && free >= THRESHOLDS.arenaFree && free >= THRESHOLDS.arenaShare * system) {
    const max = d.params.arenaMax === 0 ? 'arena_max is 0 now, which glibc reads as 8 arenas per CPU' : `arena_max is ${d.params.arenaMax} now`;
    out.push({ rule: 'arena-max', text: `${threads.length} thread arenas hold ${shortBytes(free)} free (${pct(free, system)} of their ${shortBytes(system)}): MALLOC_ARENA_MAX=2 caps the arenas at 2, main_arena and one more (${max}).` });
  }
  const p = d.params;
  if (p.raised && p.initial !== undefined && p.largeInHeap.bytes >= THRESHOLDS.largeInHeap) {
    out.push({ rule: 'mmap-threshold', text: `The mmap threshold rose to ${shortBytes(p.mmapThreshold)} after a ${shortBytes(p.mmapThreshold)} mmapped chunk was freed: ` +
      `${shortBytes(p.largeInHeap.bytes)} of large blocks (${p.largeInHeap.count}) now live in the arenas; MALLOC_MMAP_THRESHOLD_=${p.initial.mmapThreshold} keeps them mmapped, and munmap returns them.` });
  }
  const tr = d.trim;
  if (tr.resident >= THRESHOLDS.trimResident && tr.resident >= THRESHOLDS.trimShare * d.rss.total) {
    out.push({ rule: 'trim', text: `malloc_trim(0) would give back ${shortBytes(tr.resident)} resident now (${pct(tr.resident, d.rss.total)} of ${shortBytes(d.rss.total)}): ` +
      'call it after a burst of frees (mallocTrim() in heapscope), since free() gives back only the top of an arena past trim_threshold.' });
  }
  return out;
}

/**
 * V8's own account of its heap beside the table's. physical_space_size is
 * V8's estimate of the pages it touched, not the kernel's count: in a fresh
 * node it said 16.2 MiB where all other anonymous memory held 9.6 MiB
 * resident (its new space alone counted 8 MiB, the space's whole size), so
 * the two figures are given side by side, not one as part of the other.
 */
function v8Finding(physical: number, other: number): string {
  return `V8 counts ${shortBytes(physical)} of its heap spaces as physical memory (v8.getHeapSpaceStatistics(), physical_space_size: its own estimate, not the kernel's count); ` +
    `V8 maps its heap outside malloc's arenas, and the table's other anonymous memory, where such mappings count, holds ${shortBytes(other)} resident in all.`;
}

/** Most of the RSS in memory neither an arena's nor a mmapped chunk: malloc's own knobs cannot reach it. */
function otherAnonymousFinding(other: number, heapRss: number, d: Figures, outside?: { bytes: number; top?: bigint }): string {
  const held = heapRss + d.mmapped.resident;
  const share = (n: number) => `${shortBytes(n)} (${pct(n, d.rss.total)})`;
  // Where main_arena's top lies outside [heap], the other anonymous memory holds some of its memory even when [heap] could hold system_mem.
  if (outside !== undefined && (outside.bytes > 0 || outside.top !== undefined)) {
    const what = outside.bytes > 0 ? `at least ${shortBytes(outside.bytes)} mapped` : 'its top chunk';
    return `Most of the resident memory, ${share(other)}, is other anonymous memory, which holds main_arena's memory outside [heap] (${what}, above), ` +
      `against ${share(held)} in [heap], the thread arenas' heaps and mmapped chunks: malloc_trim(0), MALLOC_ARENA_MAX and the mmap threshold act on malloc's memory only.`;
  }
  const missing = d.mmapped.nMmaps - d.mmapped.found;
  return `Most of the resident memory is not glibc malloc's: ${share(other)} is other anonymous memory, neither an arena's heap nor a chunk glibc mapped on its own` +
    (missing > 0 ? ` (but for the ${missing === 1 ? 'mmapped chunk' : `${missing} mmapped chunks`} not found, below, which it may hold)` : '') +
    `, against ${share(held)} in the arenas' heaps and mmapped chunks: malloc_trim(0), MALLOC_ARENA_MAX and the mmap threshold act on those only.`;
}

/**
 * A non-contiguous main_arena: glibc lists nowhere the memory it took with
 * mmap, so the resident-memory table cannot give it a line of its own.
 */
function outsideHeapFinding(
  main: ArenaDiagnosis, outside: { bytes: number; top?: bigint }, rows: DoctorData['rss']['rows'], huge: ParamsInForce['hugePages'],
): string {
  const heap = rows.find((r) => r.kind === 'main-heap')?.size ?? 0;
  const top = outside.top === undefined ? undefined : `its top chunk (${shortBytes(main.top)} at 0x${outside.top.toString(16)})`;
  const foreign = main.foreignSbrk === undefined ? 0 : main.foreignSbrk.below + main.foreignSbrk.past;
  const cause = huge?.mainArenaMapped === true
    ? `mp_.hp_pagesize is ${shortBytes(huge.pageSize)} (set by glibc.malloc.hugetlb), with which ptmalloc_init makes main_arena's sbrk fail on purpose, so glibc maps all its memory, of huge pages where it can get them`
    : 'sbrk failed and glibc took memory with mmap';
  return `main_arena is not contiguous (its NONCONTIGUOUS_BIT is set: ${cause}): it holds ${shortBytes(main.systemMem)} ` +
    `from the system (system_mem) and [heap] is ${heap === 0 ? 'not mapped' : shortBytes(heap)}${foreign === 0 ? '' : `, ${shortBytes(foreign)} of it never main_arena's (below)`}, so ` +
    (outside.bytes === 0
      ? `[heap] is large enough to hold all of it${top === undefined ? '' : `, though ${top} lies outside [heap]`}.`
      : `at least ${shortBytes(outside.bytes)} of it${top === undefined ? '' : `, ${top} among them,`} lies in anonymous memory that glibc lists nowhere: ` +
        'the resident-memory table counts that with other anonymous memory, not with the arenas.');
}

/** [heap]'s bytes main_arena never took: the program moved the break itself. */
function foreignSbrkFinding(f: NonNullable<ArenaDiagnosis['foreignSbrk']>): string {
  const where = [
    ...(f.below === 0 ? [] : [`${shortBytes(f.below)} below its first chunk (mp_.sbrk_base lies that far into [heap]: the break moved before malloc's first sbrk)`]),
    ...(f.past === 0 ? [] : [`${shortBytes(f.past)} past the double fencepost that ends its chunks, where what follows is no chunk header (glibc's own sbrk would begin with one)`]),
  ];
  return `[heap] holds ${shortBytes(f.below + f.past)} that main_arena never took, ${shortBytes(f.resident)} of it resident (pagemap): ${where.join(', and ')}. ` +
    "Something other than malloc moved the break (sbrk, brk: what glibc calls a foreign sbrk); the main heap row and main_arena's rss count those bytes all the same.";
}

/**
 * Every chunk mp_ counts found, and mp_.mmapped_mem 16 × k bytes above their
 * mappings, less than a page, where an mmapped chunk's size is 16 bytes short
 * of its mapping (2.43): mremap_chunk adds a chunk's growth as new mapping −
 * size, 16 bytes too many, and munmap_chunk takes off the mapping, so each
 * remap leaves 16. Mappings are whole pages, so a mapping that came or went
 * between the headers' read and the copy would make a whole page's gap.
 */
function remapDrift(m: DoctorData['mmapped'], glibc: string, pageSize: number): string | undefined {
  const over = m.mmappedMem - m.bytes;
  if (m.tail === 0 || m.found !== m.nMmaps || over <= 0 || over % 16 !== 0 || over >= pageSize) return undefined;
  return `${m.found === 0 ? 'No chunk is mapped on its own (mp_.n_mmaps 0)' : `All ${plural(m.nMmaps, 'mmapped chunk')} that mp_ counts (${shortBytes(m.bytes)}) were found by their headers in anonymous memory`}, ` +
    `but mp_.mmapped_mem says ${m.mmappedMem} bytes, ${over} more (${over / 16} × 16), less than a page, which no mapping accounts for: ` +
    `what glibc ${glibc}'s mremap_chunk leaves each time realloc moves an mmapped chunk to a new size (it takes the growth from the chunk's size, ` +
    '16 bytes short of its mapping, and munmap gives back the mapping only).';
}

/**
 * What the doctor can say of mmapped chunks mp_ counts but whose headers it
 * did not find: where they lie is not known (glibc records no list of
 * them), so not which row of the resident-memory table holds their pages.
 */
function unfound(missing: number, m: DoctorData['mmapped']): string {
  if (missing <= 0) return '.';
  const where = !m.searched
    ? 'nothing was searched for them, since mallinfo2() counted, when the headers were read, as many chunks as were found: mp_\'s count changed before the snapshot'
    : m.unsearched > 0
      ? `${shortBytes(m.unsearched)} of anonymous memory past mappings that are no chunk was not searched (the search reads at most ${MAX_SEARCHED_PAGES} pages)`
      : `no page start read in the private anonymous memory searched holds ${missing === 1 ? 'its header' : 'their headers'}`;
  return missing === 1
    ? `: ${where}, so the resident-memory table counts the other with whichever line holds it, which this copy cannot tell.`
    : `: ${where}, so the resident-memory table counts the others with whichever lines hold them, which this copy cannot tell.`;
}
