// Finding mp_ (struct malloc_par) in libc's data without symbols. Its
// strongest mark is sbrk_base, the first address sysmalloc got from the
// system for main_arena: [heap]'s start, or further into [heap] where the
// program moved the break itself first; the rest are invariants glibc keeps
// whatever mallopt or the tunables set.
import { USER_END } from '../exact';
import { hex } from '../format';
import { decodeMallocPar, MallocPar } from './decode';
import { MainArena } from './locate-arena';
import { Candidate, Check, decide, fail, judge, Located, LocateInput, pass } from './locate-input';
import { offsetOf } from './struct-layout';
import { readC, view, wordNumber } from './snapshot';

/** MAP_HUGETLB, which hp_flags carries whenever glibc.malloc.hugetlb chose huge pages. */
const MAP_HUGETLB = 0x40000;

/**
 * Locates mp_ in `input.data`. `arena` is main_arena as found: without
 * [heap], its state says what sbrk_base must be.
 */
export function findMallocPar(input: LocateInput, arena: MainArena | undefined): Located<MallocPar> {
  const expected = expectedSbrkBase(input, arena);
  if (typeof expected === 'string') return { found: false, code: 'prerequisite-missing', reason: expected, candidates: [] };
  const found = search(input, arena, expected);
  const heap = input.heap;
  if (found.found || heap === undefined) return found;
  // A program that moved the break itself (sbrk, brk) before malloc's first sbrk: main_arena's memory starts further into [heap].
  // Only where [heap]'s start finds nothing, so the usual mark stays exact.
  const start = Number(heap.start);
  const end = Number(heap.end);
  const within = search(input, arena, { is: (p) => p > heap.start && p < heap.end, near: (v, at) => wordNumber(v, at) > start && wordNumber(v, at) < end });
  return within.found || (found.candidates.length === 0 && within.candidates.length > 0) ? within : found;
}

function search(
  input: LocateInput, arena: MainArena | undefined, expected: { is: (p: bigint) => boolean; near: (v: DataView, at: number) => boolean },
): Located<MallocPar> {
  const { layout } = input;
  const size = layout.mallocPar.size;
  const sbrkAt = offsetOf(layout.mallocPar, 'sbrk_base');
  const passed: Candidate[] = [];
  const nearMisses: Candidate[] = [];
  const values = new Map<bigint, MallocPar>();
  for (const { base, bytes } of input.data) {
    const v = view(bytes);
    for (let offset = Number((8n - (base % 8n)) % 8n); offset + size <= bytes.length; offset += 8) {
      if (!expected.near(v, offset + sbrkAt)) continue;
      const sbrkBase = readC(bytes, offset + sbrkAt, 'pointer');
      if (!expected.is(sbrkBase)) continue;
      const address = base + BigInt(offset);
      const par = decodeMallocPar(bytes, offset, layout, address);
      const { ok, candidate } = judge(address, checks(par, input, arena));
      if (ok) {
        passed.push(candidate);
        values.set(address, par);
      } else {
        nearMisses.push(candidate);
      }
    }
  }
  return decide('mp_', passed, nearMisses, (address) => values.get(address)!);
}

/**
 * What sbrk_base can be: [heap]'s start when there is a [heap]; with none,
 * 0 while main_arena has no memory, or (sbrk having failed) the start of the
 * first mapping main_arena took instead: a page in user space. Not at or
 * below its top: the kernel maps each later piece where it finds room, below
 * the first as often as not (a program that kept 20 MB so had its top 19 MiB
 * below sbrk_base). `near` is a test in numbers that every word `is` accepts
 * passes: the search reads every word of libc's data, and most fail it.
 */
function expectedSbrkBase(
  input: LocateInput, arena: MainArena | undefined,
): { is: (p: bigint) => boolean; near: (v: DataView, at: number) => boolean } | string {
  if (input.heap !== undefined) {
    const start = Number(input.heap.start);
    return { is: (p) => p === input.heap!.start, near: (v, at) => wordNumber(v, at) === start };
  }
  if (arena === undefined) return 'without [heap], mp_ is told by main_arena, which was not found';
  if (arena.state === 'noncontiguous') {
    return { is: (p) => p !== 0n && p < USER_END && p % 4096n === 0n, near: (v, at) => (v.getUint32(at, true) & 4095) === 0 };
  }
  return { is: (p) => p === 0n, near: (v, at) => wordNumber(v, at) === 0 };
}

function* checks(p: MallocPar, input: LocateInput, arena: MainArena | undefined): Generator<Check> {
  const { layout, heap } = input;
  yield heap === undefined
    ? pass(`sbrk_base ${hex(p.sbrkBase)} fits main_arena's state (${arena!.state}) without [heap]`)
    : p.sbrkBase === heap.start
      ? pass(`sbrk_base ${hex(p.sbrkBase)} is the start of [heap]`)
      : pass(`sbrk_base ${hex(p.sbrkBase)} lies ${p.sbrkBase - heap.start} bytes into [heap], where nothing holding [heap]'s start passed: the break moved before malloc's first sbrk`);
  yield p.nMmaps >= 0 && p.maxNMmaps >= p.nMmaps && (p.noDynThreshold === 0 || p.noDynThreshold === 1)
    ? pass(`n_mmaps ${p.nMmaps} ≤ max_n_mmaps ${p.maxNMmaps}; no_dyn_threshold ${p.noDynThreshold}`)
    : fail(`n_mmaps ${p.nMmaps}, max_n_mmaps ${p.maxNMmaps} or no_dyn_threshold ${p.noDynThreshold} is not a count and a bool`);
  // From 2.43 mremap_chunk adds the chunk's growth from its size, which is
  // 16 bytes short of its mapping (mmappedTail), and munmap_chunk takes off
  // the mapping: each remap of an mmapped chunk leaves 16 bytes more in
  // mmapped_mem for good, so it need not be whole pages, nor 0 with no chunk.
  const unit = layout.mmappedTail === 0 ? 4096n : 16n;
  const what = layout.mmappedTail === 0 ? 'whole pages' : 'multiples of 16 (2.43\'s remaps add 16 bytes each)';
  yield p.mmappedMem <= p.maxMmappedMem && p.mmappedMem % unit === 0n && p.maxMmappedMem % unit === 0n
    ? pass(`mmapped_mem ${hex(p.mmappedMem)} ≤ max_mmapped_mem ${hex(p.maxMmappedMem)}, both ${what}`)
    : fail(`mmapped_mem ${hex(p.mmappedMem)} and max_mmapped_mem ${hex(p.maxMmappedMem)} are not ${what} in order`);
  if (layout.mmappedTail === 0) {
    yield p.nMmaps !== 0 || p.mmappedMem === 0n
      ? pass('no mapped bytes without mapped chunks')
      : fail(`n_mmaps is 0 but mmapped_mem is ${hex(p.mmappedMem)}`);
  }
  // Every way to set these (mallopt, the tunables) sets no_dyn_threshold too;
  // until then they hold malloc.c's nonzero initializers or, for the
  // thresholds, what the dynamic threshold raised them to.
  yield p.noDynThreshold === 1 || (p.mmapThreshold > 0n && p.trimThreshold > 0n && p.nMmapsMax > 0)
    ? pass(p.noDynThreshold === 1
      ? 'no_dyn_threshold is set: the thresholds were set through mallopt or a tunable'
      : `untouched by mallopt, the thresholds are nonzero: mmap ${hex(p.mmapThreshold)}, trim ${hex(p.trimThreshold)}, n_mmaps_max ${p.nMmapsMax}`)
    : fail(`no_dyn_threshold is 0 (nothing set the thresholds), yet mmap_threshold ${hex(p.mmapThreshold)}, trim_threshold ${hex(p.trimThreshold)} or n_mmaps_max ${p.nMmapsMax} is 0`);
  if (p.hpFlags !== undefined) {
    // x86_64's largest page is 1 GiB.
    const power = (v: bigint) => v === 0n || ((v & (v - 1n)) === 0n && v <= 1n << 30n);
    yield power(p.thpPagesize!) && power(p.hpPagesize!) && (p.hpFlags === 0 || (p.hpFlags & MAP_HUGETLB) !== 0)
      ? pass(`thp_pagesize ${hex(p.thpPagesize!)} and hp_pagesize ${hex(p.hpPagesize!)} are 0 or page sizes; hp_flags ${hex(p.hpFlags)}`)
      : fail(`thp_pagesize ${hex(p.thpPagesize!)}, hp_pagesize ${hex(p.hpPagesize!)} or hp_flags ${hex(p.hpFlags)} is not a page size setting`);
  }
  yield* tcacheChecks(p, layout.maxTcacheMaxBytes, layout.tcache[0].smallBins, layout.tcache[0].counts);
}

/**
 * do_set_tcache_max keeps tcache_max_bytes within MAX_TCACHE_SIZE and, before
 * 2.42, tcache_bins = csize2tidx (request2size (tcache_max_bytes)) + 1, so at
 * least 1; tcache_count fits the uint16_t counts (MAX_TCACHE_COUNT).
 */
function* tcacheChecks(p: MallocPar, maxBytes: number, smallBins: number, counts: 'entries' | 'free-slots'): Generator<Check> {
  const bins = p.tcacheBins;
  yield p.tcacheMaxBytes <= BigInt(maxBytes) && bins >= 1n && bins <= BigInt(smallBins) && p.tcacheCount <= 65535n
    ? pass(`tcache: ${bins} bins up to ${p.tcacheMaxBytes} bytes, ${p.tcacheCount} chunks each`)
    : fail(`tcache_bins ${bins}, tcache_max_bytes ${p.tcacheMaxBytes} or tcache_count ${p.tcacheCount} is out of glibc's bounds`);
  if (counts === 'entries') {
    const request = p.tcacheMaxBytes + 8n + 15n;
    const chunk = request < 32n ? 32n : request & ~15n;
    const derived = (chunk - 32n + 15n) / 16n + 1n;
    yield bins === derived
      ? pass(`tcache_bins ${bins} is the bin count tcache_max_bytes ${p.tcacheMaxBytes} gives`)
      : fail(`tcache_bins ${bins} is not the ${derived} that tcache_max_bytes ${p.tcacheMaxBytes} gives`);
  }
}
