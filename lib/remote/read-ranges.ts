// Copies of another process's memory, all in one native call.
import { binding, RANGES_PER_READ } from '../binding';
import { rangeScratch } from '../fresh-memory';
import { HeapscopeError, native } from '../errors';
import { permissionError } from './proc';

export interface RangeRead {
  /** The bytes read: all of them when `errno` is 0, fewer (possibly none) otherwise. */
  bytes: Uint8Array;
  errno: number;
  /** Ranges read as `anonymous`: the pages left zero, never touched. */
  untouchedPages?: number;
  /** Ranges read as `anonymous`: why /proc/PID/pagemap could not be read, when it could not (every page was then read). */
  pagemapErrno?: number;
}

/** A range to copy; `anonymous`: it is private anonymous memory (see untouchedReadsZero), whose pages never touched are left zero. */
export interface RangeToRead {
  address: bigint;
  length: bigint;
  anonymous?: boolean;
}

/**
 * Reads each [address, length] of `pid`; a refused read is ERR_PERMISSION
 * with its cause, a gone process ERR_PROCESS_EXITED. With `into` (at least
 * as long as the ranges together), the ranges are read into it one after
 * another, and each RangeRead's `bytes` is a view of it. More ranges than
 * one native call takes are read in calls of that many, in order.
 */
export function readRanges(pid: number, ranges: readonly RangeToRead[], into?: Uint8Array): RangeRead[] {
  if (ranges.length > RANGES_PER_READ) {
    const reads: RangeRead[] = [];
    let at = 0;
    for (let i = 0; i < ranges.length; i += RANGES_PER_READ) {
      const part = ranges.slice(i, i + RANGES_PER_READ);
      const length = part.reduce((n, r) => n + Number(r.length), 0);
      for (const read of readRanges(pid, part, into?.subarray(at, at + length))) reads.push(read);
      at += length;
    }
    return reads;
  }
  const kept = rangeScratch();
  const words = kept.words.subarray(0, ranges.length * 2);
  ranges.forEach((r, i) => {
    words[2 * i] = r.address;
    words[2 * i + 1] = r.length;
  });
  let anonymous: Uint8Array | undefined;
  if (ranges.some((r) => r.anonymous === true)) {
    anonymous = kept.flags.subarray(0, ranges.length);
    ranges.forEach((r, i) => { anonymous![i] = r.anonymous === true ? 1 : 0; });
  }
  const raw = readRemote(pid, words, anonymous, into);
  let at = 0;
  return ranges.map((r, i) => ({
    bytes: into === undefined ? raw.buffers[i] ?? new Uint8Array(0) : into.subarray(at, (at += Number(r.length)) - Number(r.length) + raw.lengths[i]), errno: raw.errnos[i],
    ...(r.anonymous === true ? { untouchedPages: raw.untouched[i], ...(raw.pagemapErrno === 0 ? {} : { pagemapErrno: raw.pagemapErrno }) } : {}),
  }));
}

/**
 * Reads the address, length pairs of `words` (at most RANGES_PER_READ) into `into`,
 * one after another: for many small ranges, with no object per range. The
 * errno of each (0: whole), written into `errnos` when given.
 */
export function readPacked(pid: number, words: BigUint64Array, into: Uint8Array, errnos: Int32Array = new Int32Array(words.length / 2)): Int32Array {
  remote(pid, () => binding.readRemote(pid, words, undefined, into, errnos));
  return errnos;
}

function readRemote(pid: number, words: BigUint64Array, anonymous: Uint8Array | undefined, into: Uint8Array | undefined) {
  return remote(pid, () => binding.readRemote(pid, words, anonymous, into));
}

/** A read of `pid`'s memory; a refused one is ERR_PERMISSION with its cause. */
function remote<T>(pid: number, read: () => T): T {
  try {
    return native(read);
  } catch (error) {
    if (error instanceof HeapscopeError && error.code === 'ERR_PERMISSION') {
      throw permissionError(pid, `process_vm_readv was refused (errno ${error.errno})`, error.errno);
    }
    throw error;
  }
}
