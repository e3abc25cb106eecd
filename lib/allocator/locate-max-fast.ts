// Finding global_max_fast without symbols. Unlike main_arena and mp_ it is a
// lone number in .bss with no structure around it, and where the linker puts
// it depends on the build (Debian's 2.36: 0x6840 bytes after main_arena, in
// the anonymous part of .bss), not on the version. So one copy of libc's
// data narrows it down to the words that hold a value set_max_fast can
// produce; when more than one remains, a second copy taken after
// mallopt(M_MXFAST, request) in the same process (which changes
// process-wide state: do it in a child) tells which word moved.
import { MallocPar } from './decode';
import { MainArena } from './locate-arena';
import { Candidate, decide, Located, LocateInput, Refusal } from './locate-input';
import { locateIn, readC, Snapshot, view, wordNumber } from './snapshot';
import { MAX_FAST_SIZE } from '../size-classes';

/**
 * set_max_fast(s) for 8 ≤ s ≤ MAX_FAST_SIZE: (s + SIZE_SZ) & ~MALLOC_ALIGN_MASK,
 * a multiple of 16 from 16 to 160. (Below 8 the releases differ: 2.28 to
 * 2.30 gave 0 for 1 to 7, bug 24903.) DEFAULT_MXFAST (128) gives 128.
 */
export function setMaxFast(request: number): number {
  return Math.floor((request + 8) / 16) * 16;
}

export interface MaxFastChange {
  /** `input.data` copied again after mallopt(M_MXFAST, request) in the same process. */
  after: readonly Snapshot[];
  /** The request passed, 8 to 160: global_max_fast then reads setMaxFast(request). */
  request: number;
}

export interface GlobalMaxFast {
  address: bigint;
  /** The largest chunk size fastbins take. */
  value: number;
}

/**
 * Locates global_max_fast in `input.data`, given main_arena and mp_ as found
 * (their bytes are not candidates). Refuses while malloc has not started
 * (global_max_fast is still 0, like the rest of .bss).
 */
export function findGlobalMaxFast(
  input: LocateInput, arena: MainArena | undefined, par: MallocPar | undefined, change?: MaxFastChange,
): Located<GlobalMaxFast> {
  if (input.layout.globalMaxFast === 'none') return refuse('absent', noMaxFast(input.layout.version));
  if (arena === undefined || par === undefined) {
    return refuse('prerequisite-missing', 'global_max_fast is told from the rest of .bss only once main_arena and mp_ are found');
  }
  if (arena.state === 'uninitialized') {
    return refuse('prerequisite-missing', 'malloc has not started: global_max_fast is still 0, like the rest of .bss');
  }
  if (change !== undefined && !(Number.isInteger(change.request) && change.request >= 8 && change.request <= MAX_FAST_SIZE)) {
    return refuse('prerequisite-missing', `an M_MXFAST request of ${change.request} is not one from 8 to ${MAX_FAST_SIZE}`);
  }
  const { layout } = input;
  const width = layout.globalMaxFast === 'size_t' ? 8 : 1;
  const taken = [[arena.address, layout.mallocState.size], [par.address, layout.mallocPar.size]] as const;
  // main_arena's fastbins are emptied (malloc_consolidate) before mallopt lowers the limit.
  const largest = arena.fastbins.reduce((max, head, i) => (head !== 0n ? (i + 2) * 16 : max), 0);
  const passed: Candidate[] = [];
  const values = new Map<bigint, number>();
  for (const { base, bytes } of input.data) {
    const v = view(bytes);
    for (let offset = Number((BigInt(width) - (base % BigInt(width))) % BigInt(width)); offset + width <= bytes.length; offset += width) {
      const value = width === 8 ? wordNumber(v, offset) : v.getUint8(offset);
      if (value < 16 || value > MAX_FAST_SIZE || value % 16 !== 0 || value < largest) continue;
      const address = base + BigInt(offset);
      if (taken.some(([start, size]) => address >= start && address < start + BigInt(size))) continue;
      const evidence = [
        `a ${layout.globalMaxFast} in libc's data outside main_arena and mp_`,
        `holds ${value}, a value set_max_fast gives (16 to 160 in steps of 16)`,
        `at least ${largest}, the largest chunk size in main_arena's fastbins`,
      ];
      if (change !== undefined) {
        const now = valueAfter(change.after, address, width);
        const wanted = setMaxFast(change.request);
        if (now !== wanted || now === value) continue;
        evidence.push(`went from ${value} to ${now} with mallopt(M_MXFAST, ${change.request})`);
      }
      passed.push({ address, evidence });
      values.set(address, value);
    }
  }
  const located = decide<GlobalMaxFast>('global_max_fast', passed, [], (address) => ({ address, value: values.get(address)! }));
  if (!located.found && located.code === 'several-candidates' && change === undefined) {
    located.reason += ': copy libc\'s data again after mallopt(M_MXFAST, …) in the same process to tell which one moves';
  }
  return located;
}

function valueAfter(after: readonly Snapshot[], address: bigint, width: number): number | undefined {
  const at = locateIn(after, address, width);
  return at === undefined ? undefined : Number(readC(at.bytes, at.offset, width === 8 ? 'size_t' : 'uint8_t'));
}

/** Why a glibc without fastbins has no global_max_fast to find. */
export function noMaxFast(version: string): string {
  return `glibc ${version} has no global_max_fast: its fastbins are gone (bb5a4f5295, 2.43), and mallopt(M_MXFAST) does nothing`;
}

function refuse(code: Refusal['code'], reason: string): Refusal {
  return { found: false, code, reason, candidates: [] };
}
