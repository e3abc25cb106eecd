// Copied memory as the decoders see it: ranges of bytes with the address
// each was copied from. Whether the copies came from this process (one plan
// of `read` steps) or from another (process_vm_readv of /proc/PID), the
// decoders only ever read through this, so nothing they decode is read live.
import { HeapscopeError } from '../errors';
import { EXACT_HIGH_LIMIT, TWO_32 } from '../exact';
import { hex } from '../format';
import { Snapshot } from './snapshot';

/** One copied range. */
export interface CopiedRange extends Snapshot {
  /** What it is a copy of, for messages: `[heap]`, `libc data`, `arena heap`. */
  label: string;
}

export interface MemorySource {
  /** The copies, in address order, none overlapping. */
  readonly ranges: readonly CopiedRange[];
  /**
   * The `length` bytes at `address`, from one copied range. Throws
   * ERR_NOT_IN_SNAPSHOT, saying where the nearest copies end, when no range
   * holds them all: a decoder never falls back to live memory.
   */
  read(address: bigint, length: number): Uint8Array;
  /** Whether read() would return these bytes, for a source whose bytes are not all in `ranges` (header-memory.ts). */
  holds?(address: bigint, length: number): boolean;
  /** The little-endian 64-bit word at `address`, or undefined (read() then says why): a faster way for a source that has one. */
  word?(address: bigint): bigint | undefined;
  /** @internal Memory the source holds besides its ranges' bytes (a header copy's header blocks): releaseCopies gives it back with them. */
  held?: readonly Uint8Array[];
  /** @internal The copies read by number, for a source whose copies all lie below 2^53 (copiedMemory's): see {@link rangeHolding}. */
  numbered?: NumberedCopies;
}

/**
 * Copies whose words are read by number (exact: they lie below 2^53),
 * through one DataView a range: a subarray, a DataView and bigint
 * arithmetic per word cost ~1 us, and a bin walk over a big heap reads
 * hundreds of thousands. Read by the module's own functions, not by
 * closures made for each source: V8 keeps a function's optimized code only
 * while a closure of it lives, and each walk's were compiled again.
 */
export interface NumberedCopies {
  readonly starts: number[];
  readonly ranges: readonly CopiedRange[];
  readonly views: DataView[];
  /** The range the last lookup found: a list's next chunk is most often in the same copy. */
  last: number;
}

/**
 * The index in `c.ranges` of the copy that holds all `length` bytes at
 * `address`, or -1: with {@link wordIn}, the decoders' way through long
 * lists by number. Each length is read now: a copy whose buffer was taken
 * away (transferred) holds nothing.
 */
export function rangeHolding(c: NumberedCopies, address: number, length: number): number {
  const { starts, ranges } = c;
  const last = c.last;
  if (address >= starts[last] && address + length <= starts[last] + ranges[last].bytes.length) return last;
  for (let i = 0; i < starts.length; i++) {
    if (address >= starts[i] && address + length <= starts[i] + ranges[i].bytes.length) return (c.last = i);
  }
  return -1;
}

/** The word at `address` in range `range` (which holds it), as an exact number; -1 when it is 2^53 or more. */
export function wordIn(c: NumberedCopies, range: number, address: number): number {
  const view = c.views[range];
  const at = address - c.starts[range];
  const high = view.getUint32(at + 4, true);
  return high >= EXACT_HIGH_LIMIT ? -1 : high * TWO_32 + view.getUint32(at, true);
}

function wordAt(c: NumberedCopies, address: bigint): bigint | undefined {
  if (address < 0n || address >= 1n << 53n) return undefined;
  const range = rangeHolding(c, Number(address), 8);
  return range < 0 ? undefined : c.views[range].getBigUint64(Number(address) - c.starts[range], true);
}

/** A MemorySource over `ranges` (sorted here; overlapping ranges are refused). */
export function copiedMemory(ranges: readonly CopiedRange[]): MemorySource {
  const sorted = [...ranges].sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const before = sorted[i - 1];
    if (before.base + BigInt(before.bytes.length) > sorted[i].base) {
      throw new HeapscopeError('ERR_NOT_IN_SNAPSHOT', `copied ranges overlap: ${describeRange(before)} and ${describeRange(sorted[i])}`);
    }
  }
  const numbered: NumberedCopies | undefined = sorted.every((r) => r.base + BigInt(r.bytes.length) <= 1n << 53n) ? {
    starts: sorted.map((r) => Number(r.base)),
    ranges: sorted,
    views: sorted.map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength)),
    last: 0,
  } : undefined;
  return {
    ranges: sorted,
    ...(numbered === undefined ? {} : { numbered }),
    // Bound, not a closure: a closure made for each source is compiled again for each walk.
    word: numbered === undefined ? undefined : wordAt.bind(undefined, numbered),
    read(address: bigint, length: number): Uint8Array {
      const at = rangeAt(sorted, address);
      if (at !== undefined) {
        const r = sorted[at];
        const offset = Number(address - r.base);
        if (offset + length <= r.bytes.length) return r.bytes.subarray(offset, offset + length);
        throw notCopied(address, length, `it runs past the end of the copy of ${describeRange(r)}`);
      }
      const above = sorted.find((r) => r.base > address);
      throw notCopied(address, length, above === undefined
        ? 'it lies above every copied range'
        : `it lies outside every copied range (the next one up is ${describeRange(above)})`);
    },
  };
}

/** Two copies of the same bytes are equal; a reason (a read that failed) equals nothing. */
export function sameBytes(a: Uint8Array | string, b: Uint8Array | string): boolean {
  return typeof a !== 'string' && typeof b !== 'string' && Buffer.compare(a, b) === 0;
}

/** The bytes at `address`, or the reason they are not in `source` (no throw: for decoders that stop a list with it). */
export function readBytes(source: MemorySource, address: bigint, length: number): Uint8Array | string {
  try {
    return source.read(address, length);
  } catch (error) {
    if (error instanceof HeapscopeError) return error.message;
    throw error;
  }
}

/** The little-endian 64-bit word at `address`, or why it cannot be read. */
export function readWord(source: MemorySource, address: bigint): bigint | string {
  const word = source.word?.(address);
  if (word !== undefined) return word;
  const bytes = readBytes(source, address, 8);
  if (typeof bytes === 'string') return bytes;
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

/** Whether all `length` bytes at `address` were copied. */
export function holds(source: MemorySource, address: bigint, length = 1): boolean {
  if (source.holds !== undefined) return source.holds(address, length);
  const at = rangeAt(source.ranges, address);
  return at !== undefined && address + BigInt(length) <= source.ranges[at].base + BigInt(source.ranges[at].bytes.length);
}

/** The copied range holding `address`, or undefined. */
export function rangeOf(source: MemorySource, address: bigint): CopiedRange | undefined {
  const at = rangeAt(source.ranges, address);
  return at === undefined ? undefined : source.ranges[at];
}

function rangeAt(sorted: readonly CopiedRange[], address: bigint): number | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid].base + BigInt(sorted[mid].bytes.length) <= address) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo].base <= address ? lo : undefined;
}

function describeRange(r: CopiedRange): string {
  return `${r.label} ${hex(r.base)}–${hex(r.base + BigInt(r.bytes.length))}`;
}

export function notCopied(address: bigint, length: number, why: string): HeapscopeError {
  return new HeapscopeError('ERR_NOT_IN_SNAPSHOT', `${length} bytes at ${hex(address)} were not copied: ${why}`);
}
