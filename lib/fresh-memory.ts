// Zeroed bytes for the columns a walk of a big heap fills. A typed array
// that size came from malloc, which mapped it afresh, and each of its pages
// then cost a fault when first written: on the machine measured a page
// fault costs ~10 us, and 17 MiB of columns took ~60 ms that way against
// ~10 ms in huge pages faulted in at once (binding.freshBuffer). Smaller
// ones are plain typed arrays.
import { binding } from './binding';
import { native } from './errors';

/** From this many bytes on (one huge page), zeroedBytes maps them. */
const FRESH_FROM = 2 << 20;

/** `length` zero bytes, on an ArrayBuffer of their own (offset 0: any view of it is aligned). */
export function zeroedBytes(length: number): Uint8Array {
  if (length < FRESH_FROM) return new Uint8Array(length);
  const fresh = native(() => binding.freshBuffer(length));
  return new Uint8Array(fresh.buffer, fresh.byteOffset, length);
}
