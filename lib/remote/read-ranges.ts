// Copies of another process's memory, all in one native call.
import { binding } from '../binding';
import { HeapscopeError, native } from '../errors';
import { permissionError } from './proc';

export interface RangeRead {
  /** The bytes read: all of them when `errno` is 0, fewer (possibly none) otherwise. */
  bytes: Uint8Array;
  errno: number;
}

/** Reads each [address, length] of `pid`; a refused read is ERR_PERMISSION with its cause, a gone process ERR_PROCESS_EXITED. */
export function readRanges(pid: number, ranges: readonly { address: bigint; length: bigint }[]): RangeRead[] {
  const words = new BigUint64Array(ranges.length * 2);
  ranges.forEach((r, i) => {
    words[2 * i] = r.address;
    words[2 * i + 1] = r.length;
  });
  let raw;
  try {
    raw = native(() => binding.readRemote(pid, words));
  } catch (error) {
    if (error instanceof HeapscopeError && error.code === 'ERR_PERMISSION') {
      throw permissionError(pid, `process_vm_readv was refused (errno ${error.errno})`, error.errno);
    }
    throw error;
  }
  return ranges.map((_, i) => ({ bytes: raw.buffers[i] ?? new Uint8Array(0), errno: raw.errnos[i] }));
}
