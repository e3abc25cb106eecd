// A hash table from addresses (as numbers) to values: the live handles of
// this thread. A Map keyed by bigint costs ~200 ns a set + delete (V8
// hashes a BigInt through a runtime call) and one keyed by a heap number
// still ~80 ns; open addressing over a Float64Array costs a few. Addresses
// of x86_64 user space are below 2^47, so numbers hold them exactly.
import { releaseBytes, zeroedArray } from './fresh-memory';

const EMPTY = 0; // no block lives at address 0

export class AddressTable<T> {
  #keys = new Float64Array(1024);
  #values: (T | undefined)[] = new Array<T | undefined>(1024).fill(undefined);
  #mask = 1023;
  #shift = 22; // 32 - log2(length)
  #count = 0;

  get size(): number {
    return this.#count;
  }

  // Blocks are 16-byte aligned: drop those bits, take the next 32 (`>>> 0`),
  // fold their high half into the low one and spread them over the table
  // (Fibonacci hashing: the product's top bits). Without the fold, blocks
  // of some sizes side by side fell into long runs of slots, each a probe
  // (test/address-table.test.ts bounds them).
  #home(key: number): number {
    const granule = (key / 16) >>> 0;
    return Math.imul(granule ^ (granule >>> 16), 0x9e3779b1) >>> this.#shift;
  }

  #slot(key: number): number {
    const keys = this.#keys;
    let i = this.#home(key);
    while (keys[i] !== EMPTY && keys[i] !== key) i = (i + 1) & this.#mask;
    return i;
  }

  get(key: number): T | undefined {
    const i = this.#slot(key);
    return this.#keys[i] === key ? this.#values[i] : undefined;
  }

  set(key: number, value: T): void {
    if ((this.#count + 1) * 2 > this.#keys.length) this.#grow();
    const i = this.#slot(key);
    if (this.#keys[i] !== key) this.#count++;
    this.#keys[i] = key;
    this.#values[i] = value;
  }

  delete(key: number): boolean {
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let i = this.#slot(key);
    if (keys[i] !== key) return false;
    this.#count--;
    // Backward-shift deletion keeps every probe chain unbroken.
    for (let j = (i + 1) & mask; keys[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.#home(keys[j]);
      const between = i <= j ? i < home && home <= j : i < home || home <= j;
      if (between) continue;
      keys[i] = keys[j];
      values[i] = values[j];
      i = j;
    }
    keys[i] = EMPTY;
    values[i] = undefined;
    return true;
  }

  /** The keys in [lo, hi), in no order. */
  keysWithin(lo: number, hi: number): Float64Array {
    const keys = this.#keys;
    let n = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] >= lo && keys[i] < hi) n++;
    const out = zeroedArray(Float64Array, n);
    n = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] >= lo && keys[i] < hi) out[n++] = keys[i];
    return out;
  }

  values(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.#keys.length; i++) if (this.#keys[i] !== EMPTY) out.push(this.#values[i] as T);
    return out;
  }

  /** @internal The longest run of taken slots, wrapping around: the most probes a lookup can take (the tests bound it). */
  longestRun(): number {
    const keys = this.#keys;
    let run = 0;
    let longest = 0;
    for (let i = 0; i < 2 * keys.length && longest < keys.length; i++) {
      run = keys[i & this.#mask] === EMPTY ? 0 : run + 1;
      if (run > longest) longest = run;
    }
    return longest;
  }

  #grow(): void {
    const keys = this.#keys;
    const values = this.#values;
    // From 16,384 slots on, mapped: from malloc, the old keys, freed, raised glibc's mmap threshold to their size.
    this.#keys = zeroedArray(Float64Array, keys.length * 2);
    this.#values = new Array<T | undefined>(keys.length * 2).fill(undefined);
    this.#mask = keys.length * 2 - 1;
    this.#shift--;
    this.#count = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== EMPTY) this.set(keys[i], values[i] as T);
    releaseBytes([new Uint8Array(keys.buffer)]);
  }
}
