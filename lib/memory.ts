// Reading process memory at any address, safely.
import { binding } from './binding';
import { native, rangeError } from './errors';
import { maps, untouchedReadsZero } from './maps';
import { Size, toAddress, toSize } from './validate';

/** The most one readMemory call copies. */
export const MAX_READ = 64n << 20n;

/**
 * Copies `length` bytes at `address` of this process through
 * process_vm_readv: an unmapped or unreadable address throws an error with
 * code `EFAULT` instead of crashing the process. Pages of private anonymous
 * memory never touched (neither present nor swapped in /proc/self/pagemap)
 * are not read but zero in the copy, so reading does not make them resident;
 * where pagemap cannot be read, they are read like the rest.
 */
export function readMemory(address: bigint, length: Size): Buffer {
  const at = toAddress(address);
  const n = toSize(length, 'length');
  if (n > MAX_READ) {
    throw rangeError(`length ${n} is above MAX_READ (${MAX_READ} bytes, 64 MiB), the most one read copies: read larger ranges in pieces`);
  }
  const copy = native(() => binding.readMemory(at, n, 2));
  if (copy !== null) return copy;
  // It met a page never touched: the map says whether the range is memory where such a page reads as zeros.
  const end = at + n;
  const regions = maps().filter((r) => r.end > at && r.start < end);
  const covered = regions.length > 0 && regions[0].start <= at && regions[regions.length - 1].end >= end
    && regions.every((r, i) => untouchedReadsZero(r) && (i === 0 || r.start === regions[i - 1].end));
  return native(() => binding.readMemory(at, n, covered ? 1 : 0));
}
