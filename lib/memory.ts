// Reading process memory at any address, safely.
import { binding } from './binding';
import { native, rangeError } from './errors';
import { Size, toAddress, toSize } from './validate';

/** The most one readMemory call copies. */
export const MAX_READ = 64n << 20n;

/**
 * Copies `length` bytes at `address` of this process through
 * process_vm_readv: an unmapped or unreadable address throws an error with
 * code `EFAULT` instead of crashing the process.
 */
export function readMemory(address: bigint, length: Size): Buffer {
  const at = toAddress(address);
  const n = toSize(length, 'length');
  if (n > MAX_READ) {
    throw rangeError(`length ${n} is above MAX_READ (${MAX_READ} bytes, 64 MiB), the most one read copies: read larger ranges in pieces`);
  }
  return native(() => binding.readMemory(at, n));
}
