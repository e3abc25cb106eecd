// Addresses cross the addon as numbers (exact below 2^53; x86_64 user
// space ends at 2^47) and reach users as bigints. BigInt(number) is a call
// into the runtime (~40 ns); a bigint read out of a BigUint64Array whose two
// halves were just written is made inline (~13 ns).
const word = new BigUint64Array(1);
const halves = new Uint32Array(word.buffer);
export const TWO_32 = 4294967296;
/** 2^53: whole numbers below it are exact as numbers (every x86_64 user address is). */
export const EXACT_LIMIT = 2 ** 53;
/** x86_64's user address space ends at 2^47 (4-level paging; 5-level paging gives more only to a process that asks for it). */
export const USER_END = 1n << 47n;
/** A 64-bit word's high half from which the word is 2^53 or more: no exact number. */
export const EXACT_HIGH_LIMIT = 0x200000;

/** `value` (a whole number from 0 to 2^53 - 1) as a bigint. */
export function bigintOf(value: number): bigint {
  halves[0] = value >>> 0;
  halves[1] = (value / TWO_32) >>> 0;
  return word[0];
}
