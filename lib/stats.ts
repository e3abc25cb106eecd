// Process-wide allocator facts and settings.
import { binding } from './binding';
import { HeapscopeError, native, typeError } from './errors';
import { defineOwn, describe, lookup, toIndex, toSize, Size } from './validate';

/**
 * glibc's `struct mallinfo2`, summed over every arena, plus which call
 * answered: `mallinfo2` (glibc ≥ 2.33) or `mallinfo` (older; its int fields
 * wrap past 4 GiB, read here as unsigned).
 */
export interface Mallinfo {
  source: 'mallinfo2' | 'mallinfo';
  /** Bytes of system memory held by all arenas (brk heap and thread heaps). */
  arena: number;
  /** Free chunks, counting each arena's top chunk. */
  ordblks: number;
  /** Chunks in fastbins. */
  smblks: number;
  /** Chunks mmapped on their own. */
  hblks: number;
  /** Bytes in mmapped chunks. */
  hblkhd: number;
  /** Always 0 in glibc. */
  usmblks: number;
  /** Bytes in fastbins. */
  fsmblks: number;
  /** Bytes in use, tcache chunks included. */
  uordblks: number;
  /** Bytes free. */
  fordblks: number;
  /** Size of main_arena's top chunk: what malloc_trim could give back at most. */
  keepcost: number;
}

export const MALLINFO_FIELDS = [
  'arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost',
] as const;

// Filled in place by the addon on each call: no object, no BigInt.
const fields = new Float64Array(MALLINFO_FIELDS.length);

export function mallinfo2(): Mallinfo {
  const source = native(() => binding.mallinfo(fields));
  const f = fields;
  return {
    source: source === 2 ? 'mallinfo2' : 'mallinfo',
    arena: f[0], ordblks: f[1], smblks: f[2], hblks: f[3], hblkhd: f[4],
    usmblks: f[5], fsmblks: f[6], uordblks: f[7], fordblks: f[8], keepcost: f[9],
  };
}

/** @internal Builds a Mallinfo from the ten fields in glibc's order. */
export function fromWords(source: Mallinfo['source'], words: readonly bigint[]): Mallinfo {
  const m = { source } as Mallinfo;
  MALLINFO_FIELDS.forEach((field, k) => defineOwn(m, field, Number(words[k])));
  return m;
}

/** The program break, `sbrk(0)`: the end of the main arena's `[heap]`. */
export function programBreak(): bigint {
  return binding.programBreak();
}

/** `gnu_get_libc_version()`, e.g. `"2.36"`. */
export function glibcVersion(): string {
  return binding.glibcVersion();
}

export function pageSize(): number {
  return binding.pageSize();
}

/** mallopt parameter numbers from glibc's `<malloc.h>`. */
export const M_MXFAST = 1;
export const M_TRIM_THRESHOLD = -1;
export const M_TOP_PAD = -2;
export const M_MMAP_THRESHOLD = -3;
export const M_MMAP_MAX = -4;
export const M_PERTURB = -6;
export const M_ARENA_TEST = -7;
export const M_ARENA_MAX = -8;

export const MALLOPT_PARAMS = {
  M_MXFAST,
  M_TRIM_THRESHOLD,
  M_TOP_PAD,
  M_MMAP_THRESHOLD,
  M_MMAP_MAX,
  M_PERTURB,
  M_ARENA_TEST,
  M_ARENA_MAX,
} as const;

export type MalloptParam = keyof typeof MALLOPT_PARAMS;

const INT_MAX = 2 ** 31 - 1;

/**
 * Sets an allocator parameter of *this* process, like C's `mallopt`. The
 * parameter is a name (`'M_MMAP_THRESHOLD'`) or its number. Setting
 * M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD or M_MMAP_MAX turns off
 * glibc's dynamic mmap threshold for the rest of the process's life, so
 * experiments that call it run in a child process.
 *
 * Values are 0 … 2^31-1; M_TRIM_THRESHOLD also takes -1 (never trim).
 * Throws `ERR_UNKNOWN_MALLOPT_PARAM` for any other parameter and
 * `ERR_MALLOPT_REJECTED` when glibc returns 0 (e.g. M_MXFAST above 160 to
 * 2.42; from 2.43, which has no fastbins, M_MXFAST accepts anything and does
 * nothing).
 */
export function mallopt(param: MalloptParam | number, value: number): void {
  const number = malloptNumber(param);
  if (typeof value !== 'number') throw typeError(`mallopt value must be a number, got ${describe(value)}`);
  const v = number === M_TRIM_THRESHOLD && value === -1 ? -1 : toIndex(value, 'mallopt value', INT_MAX);
  if (binding.mallopt(number, v) !== 1) {
    throw new HeapscopeError('ERR_MALLOPT_REJECTED', `glibc rejected mallopt(${malloptName(number)}, ${v})`);
  }
}

function malloptNumber(param: unknown): number {
  const named = lookup(MALLOPT_PARAMS, param);
  if (named !== undefined) return named;
  if (typeof param === 'number' && Object.values(MALLOPT_PARAMS).includes(param as never)) return param;
  const shown = typeof param === 'string' ? JSON.stringify(param) : typeof param === 'number' ? String(param) : describe(param);
  throw new HeapscopeError(
    'ERR_UNKNOWN_MALLOPT_PARAM',
    `unknown mallopt parameter ${shown}; known: ${Object.keys(MALLOPT_PARAMS).join(', ')}`,
  );
}

function malloptName(number: number): string {
  return Object.entries(MALLOPT_PARAMS).find(([, n]) => n === number)?.[0] ?? String(number);
}

/**
 * `malloc_trim(pad)`: gives whole free pages of every arena back to the
 * kernel (MADV_DONTNEED) and shrinks main_arena's top down to `pad` bytes.
 * Returns whether glibc says it released anything.
 */
export function mallocTrim(pad: Size = 0): boolean {
  return binding.mallocTrim(toSize(pad, 'pad')) === 1;
}
