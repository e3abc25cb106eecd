// What the symbol-free search for malloc's globals reads, and what it answers.
// Inputs are copies of memory plus addresses; nothing here reads memory, so
// another process's copies work the same way.
import { hex } from '../format';
import { GlibcLayout } from './layouts';
import { inSnapshots, Snapshot } from './snapshot';

export interface AddressRange {
  start: bigint;
  /** Exclusive. */
  end: bigint;
}

export interface LocateInput {
  layout: GlibcLayout;
  /**
   * libc's writable data: its file-backed rw-p mapping (.data and the start
   * of .bss) and the anonymous rw-p mapping right after it (the rest of
   * .bss). main_arena and mp_ are initialized, so in .data; global_max_fast
   * is zero until malloc starts, so in .bss.
   */
  data: readonly Snapshot[];
  /** [heap], from its start to the program break; absent when the process has none. */
  heap?: AddressRange;
  /**
   * Copies of other memory, e.g. the first pages of thread arenas' heaps,
   * where main_arena.next leads: with them the arena list is followed around.
   */
  others?: readonly Snapshot[];
}

/** A struct or variable found, with the checks it passed. */
export interface Found<T> {
  found: true;
  address: bigint;
  value: T;
  /** Each check that passed, as a sentence with the values read. */
  evidence: string[];
}

export type RefusalCode =
  /** Nothing in the data passed every check. */
  | 'no-candidate'
  /** More than one place passed every check: taking one would be a guess. */
  | 'several-candidates'
  /** What this depends on was not found. */
  | 'prerequisite-missing'
  /** This glibc has no such thing (global_max_fast from 2.43). */
  | 'absent';

export interface Candidate {
  address: bigint;
  /** What it passed, and for a rejected near miss what it failed (last). */
  evidence: string[];
}

export interface Refusal {
  found: false;
  code: RefusalCode;
  reason: string;
  /** The places that passed (several-candidates) or the near misses (no-candidate), at most 8. */
  candidates: Candidate[];
}

export type Located<T> = Found<T> | Refusal;

/** A check's outcome: passed with a sentence of evidence, or failed with a reason. */
export type Check = { ok: true; says: string } | { ok: false; says: string };

export const pass = (says: string): Check => ({ ok: true, says });
export const fail = (says: string): Check => ({ ok: false, says });

/** Joins passed checks into a Found, or the first failure into a near miss. */
export function judge(address: bigint, checks: Iterable<Check>): { ok: boolean; candidate: Candidate } {
  const evidence: string[] = [];
  for (const check of checks) {
    evidence.push(check.says);
    if (!check.ok) return { ok: false, candidate: { address, evidence } };
  }
  return { ok: true, candidate: { address, evidence } };
}

/** One Found from the candidates that passed, or a refusal naming them or the near misses. */
export function decide<T>(what: string, passed: readonly Candidate[], nearMisses: readonly Candidate[], value: (address: bigint) => T): Located<T> {
  if (passed.length === 1) return { found: true, address: passed[0].address, value: value(passed[0].address), evidence: passed[0].evidence };
  if (passed.length > 1) {
    return {
      found: false, code: 'several-candidates', candidates: passed.slice(0, 8),
      reason: `${passed.length} places pass every check for ${what} (${passed.slice(0, 4).map((c) => hex(c.address)).join(', ')}${passed.length > 4 ? ', …' : ''})`,
    };
  }
  // The near miss that passed the most checks says which one failed: the cause, where one place nearly was it.
  const nearest = nearMisses.reduce<Candidate | undefined>((best, c) => (best === undefined || c.evidence.length > best.evidence.length ? c : best), undefined);
  const why = nearest === undefined ? '' : `; the nearest, ${hex(nearest.address)}, passed ${nearest.evidence.length - 1} checks, then failed: ${nearest.evidence.at(-1)}`;
  return { found: false, code: 'no-candidate', candidates: nearMisses.slice(0, 8), reason: `nothing in libc's data passes every check for ${what}${why}` };
}

/** Whether `p` can be a chunk of main_arena's [heap]: 16-byte aligned and inside it. */
export function inHeap(p: bigint, heap: AddressRange | undefined): boolean {
  return heap !== undefined && p % 16n === 0n && p >= heap.start && p < heap.end;
}

/**
 * Whether `p` can be a thread arena: _int_new_arena puts the malloc_state
 * right after the heap_info at the start of a page-aligned heap, so at
 * sizeof (heap_info) into a page. Outside libc's data and [heap].
 */
export function looksLikeThreadArena(p: bigint, input: LocateInput): boolean {
  return p % 4096n === BigInt(input.layout.heapInfo.size) && !inSnapshots(input.data, p)
    && !(input.heap !== undefined && p >= input.heap.start && p < input.heap.end);
}
