// Safe-linking (glibc ≥ 2.32, malloc.c's PROTECT_PTR and REVEAL_PTR): a
// fastbin or tcache `next` link is stored XORed with the address it is stored
// at shifted right by 12, i.e. with the ASLR bits of its own page.
import { TWO_32 } from '../exact';

/** PROTECT_PTR(pos, ptr): the word glibc stores at `at` for the link `pointer`. */
export function protectPointer(at: bigint, pointer: bigint): bigint {
  return (at >> 12n) ^ pointer;
}

/** REVEAL_PTR: the link that the word `stored`, read at address `at`, encodes. XOR undoes itself. */
export function revealPointer(stored: bigint, at: bigint): bigint {
  return protectPointer(at, stored);
}

/** revealPointer by number, for `stored` and `at` below 2^53 (the result is too): the list walks' fast path. */
export function revealNumber(stored: number, at: number): number {
  const key = Math.floor(at / 4096);
  const low = ((stored % TWO_32) ^ (key % TWO_32)) >>> 0;
  const high = (Math.floor(stored / TWO_32) ^ Math.floor(key / TWO_32)) >>> 0;
  return high * TWO_32 + low;
}
