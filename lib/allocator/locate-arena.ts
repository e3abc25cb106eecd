// Finding main_arena in libc's data without symbols: the one malloc_state
// whose own bins and list links say so. Every 8-byte aligned place is tried;
// a place passes only if each check below holds for it.
import { hex } from '../format';
import { followArenas } from './arena-chain';
import { decodeMallocState, initialTop, MallocState } from './decode';
import {
  Candidate, Check, decide, fail, inHeap, judge, Located, LocateInput, looksLikeThreadArena, pass,
} from './locate-input';
import { inSnapshots, readC, view, wordNumber } from './snapshot';
import { offsetOf } from './struct-layout';

/**
 * What main_arena's top says about the process's memory:
 * - `uninitialized`: malloc has not run yet; main_arena is as libc's .data
 *   holds it (top 0, no bin set up; only next = itself and attached_threads = 1).
 * - `no-memory`: malloc_init_state ran, but the arena has no memory yet:
 *   top is initial_top, which is main_arena's own unsorted bin header.
 * - `heap`: top is a chunk in [heap].
 * - `noncontiguous`: sbrk failed (or glibc.malloc.hugetlb made it fail on
 *   purpose) and main_arena took memory with mmap
 *   (NONCONTIGUOUS_BIT set); top is in such a mapping.
 */
export type MainArenaState = 'uninitialized' | 'no-memory' | 'heap' | 'noncontiguous';

export interface MainArena extends MallocState {
  state: MainArenaState;
}

const NONCONTIGUOUS_BIT = 2;

/** Locates main_arena in `input.data`. */
export function findMainArena(input: LocateInput): Located<MainArena> {
  const { layout } = input;
  const size = layout.mallocState.size;
  const nextAt = offsetOf(layout.mallocState, 'next');
  const passed: Candidate[] = [];
  const nearMisses: Candidate[] = [];
  const states = new Map<bigint, MainArena>();
  const inPage = layout.heapInfo.size % 4096;
  for (const { base, bytes } of input.data) {
    const v = view(bytes);
    const baseNumber = Number(base);
    for (let offset = Number((8n - (base % 8n)) % 8n); offset + size <= bytes.length; offset += 8) {
      // main_arena.next is itself or a thread arena (heap_info.size into a
      // page) in every state: a first filter in numbers, then in full.
      if (wordNumber(v, offset + nextAt) !== baseNumber + offset && (v.getUint32(offset + nextAt, true) & 4095) !== inPage) continue;
      const address = base + BigInt(offset);
      const next = readC(bytes, offset + nextAt, 'pointer');
      if (next !== address && !looksLikeThreadArena(next, input)) continue;
      const arena = decodeMallocState(bytes, offset, layout, address);
      const { ok, candidate } = judge(address, checks(arena, input));
      if (ok) {
        passed.push(candidate);
        // Its state added to the decoded struct (made here, read by no one else), not a spread copy: a
        // copy took a shape of its own, and findGlobalMaxFast was deoptimized at each new one.
        const main = arena as MainArena;
        main.state = stateOf(arena, input);
        states.set(address, main);
      } else if (candidate.evidence.length > 2) {
        nearMisses.push(candidate);
      }
    }
  }
  return decide('main_arena', passed, nearMisses, (address) => states.get(address)!);
}

function stateOf(a: MallocState, input: LocateInput): MainArenaState {
  if (a.top === 0n) return 'uninitialized';
  if (a.top === initialTop(input.layout, a.address)) return 'no-memory';
  return inHeap(a.top, input.heap) ? 'heap' : 'noncontiguous';
}

function* checks(a: MallocState, input: LocateInput): Generator<Check> {
  const { layout, heap } = input;
  // The lock is 0 (free), 1 (taken) or 2 (taken, waiters); the only flag is NONCONTIGUOUS_BIT.
  // have_fastchunks: none from 2.43.
  const fastOk = a.haveFastchunks === undefined || a.haveFastchunks === 0 || a.haveFastchunks === 1;
  const fast = a.haveFastchunks === undefined ? '' : `, have_fastchunks ${a.haveFastchunks}`;
  yield a.mutex >= 0 && a.mutex <= 2 && (a.flags & ~NONCONTIGUOUS_BIT) === 0 && fastOk
    ? pass(`mutex ${a.mutex}, flags ${hex(a.flags)}${fast}`)
    : fail(`mutex ${a.mutex}, flags ${hex(a.flags)}${fast}: not a lock, NONCONTIGUOUS_BIT${a.haveFastchunks === undefined ? '' : ' and a bool'}`);
  yield a.next === a.address
    ? pass('next points back to itself: the only arena')
    : pass(`next ${hex(a.next)} sits ${hex(layout.heapInfo.size)} into a page, where a thread arena follows its heap_info`);
  if (a.next !== a.address && input.others !== undefined) {
    const chain = followArenas(a.address, [...input.data, ...input.others], layout);
    if (chain.complete) yield pass(`the next list returns to it after ${chain.arenas.length} arenas`);
    else if (chain.leftCopies) yield pass(`the next list was followed over ${chain.arenas.length} arenas, until ${chain.reason}`);
    else yield fail(`the next list does not return to it: ${chain.reason}`);
  }
  yield a.nextFree === 0n || a.nextFree === a.address || looksLikeThreadArena(a.nextFree, input)
    ? pass(`next_free ${hex(a.nextFree)} is null or an arena`)
    : fail(`next_free ${hex(a.nextFree)} is neither null nor an arena`);
  yield a.attachedThreads < 1n << 32n ? pass(`attached_threads ${a.attachedThreads}`) : fail(`attached_threads ${a.attachedThreads} is not a thread count`);
  yield a.systemMem <= a.maxSystemMem && a.systemMem % 4096n === 0n
    ? pass(`system_mem ${hex(a.systemMem)} is whole pages, at most max_system_mem ${hex(a.maxSystemMem)}`)
    : fail(`system_mem ${hex(a.systemMem)} is not whole pages at most max_system_mem ${hex(a.maxSystemMem)}`);
  if (a.top === 0n) {
    yield* untouched(a);
    return;
  }
  const state = stateOf(a, input);
  // Memory glibc took with mmap for main_arena once brk failed, which no map line names.
  const mapped = (a.flags & NONCONTIGUOUS_BIT) !== 0;
  if (state === 'no-memory') {
    yield a.systemMem === 0n && a.lastRemainder === 0n
      ? pass('top is initial_top (its own unsorted bin), with no memory from the system yet')
      : fail(`top is initial_top, yet system_mem is ${hex(a.systemMem)}`);
  } else if (state === 'heap') {
    // Not contiguous, its top back in [heap] (brk failed once, then grew again), it also holds what it took with mmap meanwhile.
    yield a.systemMem > 0n && (a.systemMem <= heap!.end - heap!.start || mapped)
      ? pass(`top ${hex(a.top)} lies in [heap], ${hex(heap!.end - a.top)} bytes before its end; ` +
        (mapped ? 'system_mem may exceed [heap]: the arena is not contiguous (NONCONTIGUOUS_BIT)' : 'system_mem fits in [heap]'))
      : fail(`top ${hex(a.top)} lies in [heap], but system_mem ${hex(a.systemMem)} does not fit there`);
  } else {
    yield mapped && a.top % 16n === 0n && !inSnapshots(input.data, a.top) && a.systemMem > 0n
      ? pass(`top ${hex(a.top)} is outside [heap], where only an arena that fell back to mmap (NONCONTIGUOUS_BIT) has it`)
      : fail(`top ${hex(a.top)} is neither in [heap] nor initial_top, and the arena is not noncontiguous`);
  }
  const chunk = (p: bigint): boolean => (state === 'heap' || state === 'noncontiguous')
    && (inHeap(p, heap) || (mapped && p % 16n === 0n && !inSnapshots(input.data, p)));
  yield* bins(a, chunk);
  const badFast = a.fastbins.find((p) => p !== 0n && !chunk(p));
  yield badFast === undefined
    ? pass(`${a.fastbins.filter((p) => p !== 0n).length} of ${a.fastbins.length} fastbins hold chunks, all in the arena's memory`)
    : fail(`fastbin head ${hex(badFast)} is not a chunk of the arena`);
  yield a.lastRemainder === 0n || chunk(a.lastRemainder)
    ? pass(`last_remainder ${hex(a.lastRemainder)} is null or a chunk of the arena`)
    : fail(`last_remainder ${hex(a.lastRemainder)} is not a chunk of the arena`);
}

/** Bins 1–127: empty (fd = bk = the bin itself) or both links chunks; a non-empty bin from 2 on is marked in binmap. */
function* bins(a: MallocState, chunk: (p: bigint) => boolean): Generator<Check> {
  let empty = 0;
  for (const bin of a.bins) {
    if (bin.fd === bin.address && bin.bk === bin.address) {
      empty++;
      continue;
    }
    if (!chunk(bin.fd) || !chunk(bin.bk)) {
      yield fail(`bin ${bin.index}: fd ${hex(bin.fd)} and bk ${hex(bin.bk)} are neither the bin itself nor chunks of the arena`);
      return;
    }
    if (bin.index >= 2 && (a.binmap[bin.index >> 5] & (1 << (bin.index & 31))) === 0) {
      yield fail(`bin ${bin.index} holds chunks but its binmap bit is clear`);
      return;
    }
  }
  yield pass(`all ${a.bins.length} bins are well formed: ${empty} empty (fd = bk = the bin), ${a.bins.length - empty} holding chunks, each marked in binmap`);
}

/** main_arena before malloc's first call: all zero but next (itself) and attached_threads (1). */
function* untouched(a: MallocState): Generator<Check> {
  const zero = a.fastbins.every((p) => p === 0n) && a.lastRemainder === 0n && a.bins.every((b) => b.fd === 0n && b.bk === 0n)
    && a.binmap.every((w) => w === 0) && a.systemMem === 0n && a.maxSystemMem === 0n && a.flags === 0 && (a.haveFastchunks ?? 0) === 0;
  yield zero && a.next === a.address && a.attachedThreads === 1n
    ? pass('top is null and the rest zero but next (itself) and attached_threads (1): main_arena as .data holds it before malloc runs')
    : fail('top is null, but the rest is not main_arena as .data holds it before malloc runs');
}

