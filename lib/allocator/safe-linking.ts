// Safe-linking (glibc ≥ 2.32, malloc.c's PROTECT_PTR and REVEAL_PTR): a
// fastbin or tcache `next` link is stored XORed with the address it is stored
// at shifted right by 12, i.e. with the ASLR bits of its own page.

/** PROTECT_PTR(pos, ptr): the word glibc stores at `at` for the link `pointer`. */
export function protectPointer(at: bigint, pointer: bigint): bigint {
  return (at >> 12n) ^ pointer;
}

/** REVEAL_PTR: the link that the word `stored`, read at address `at`, encodes. XOR undoes itself. */
export function revealPointer(stored: bigint, at: bigint): bigint {
  return protectPointer(at, stored);
}
