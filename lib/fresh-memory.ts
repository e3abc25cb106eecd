// Zeroed bytes for the columns a walk of a big heap fills. A typed array
// that size came from malloc, which mapped it afresh, and each of its pages
// then cost a fault when first written: on the machine measured a page
// fault costs ~10 us, and 17 MiB of columns took ~60 ms that way against
// ~10 ms in huge pages faulted in at once (binding.freshBuffer). Those
// under FRESH_FROM are plain typed arrays. And scratch kept between calls,
// in memory the addon maps whatever its size: a typed array of it came from
// malloc, a chunk in the very heap heapscope reads.
import { binding, RANGES_PER_READ } from './binding';
import { native } from './errors';

/**
 * From this many bytes on, zeroedBytes maps them. It was 2 MiB (a huge
 * page) until the round of 2026-12-06 (late): a walk's column of places,
 * two bytes a chunk (2.07 MB for the bench's million chunks), was then a
 * plain typed array, memory malloc took for it, each page faulted in as it
 * was first written, where a mapped one from 1 MiB on is faulted in by one
 * call (PopulateForCopy, native/untouched.cc). In turns with the code
 * before: walkHeap() 93.4-101.0 ns a chunk against 100.0-103.8 (three bench
 * runs each), 102-122 ms against 110-135 for 25 walks in a loop. Then 256
 * KiB, until the round of 2026-12-07 (afternoon): it is now glibc's least
 * mmap threshold (DEFAULT_MMAP_THRESHOLD_MIN), since malloc maps a block at
 * or above the threshold on its own, and freeing it raises the threshold to
 * its size. heapscope's own arrays then moved the mp_.mmap_threshold it
 * reports: a table of 120,000 live handles, grown past 1 MiB, left it at 1
 * MiB; a read of /proc/self/smaps at 236 KiB.
 */
export const FRESH_FROM = 128 << 10;

/**
 * `length` zero bytes, on an ArrayBuffer of their own (offset 0: any view
 * of it is aligned). With `populate` false, mapped ones are faulted in as
 * they are written, not at once: for a column sized for the most it could
 * hold, of which a caller writes only the start.
 */
export function zeroedBytes(length: number, populate = true): Uint8Array {
  return length < FRESH_FROM ? new Uint8Array(length) : mappedBytes(length, populate);
}

/** `length` zeroed elements of `Type` on a buffer of their own, as zeroedBytes gives bytes (mapped from FRESH_FROM bytes on). */
export function zeroedArray<T extends Uint32Array | Float64Array | BigUint64Array>(
  Type: { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number }, length: number,
): T {
  return new Type(zeroedBytes(length * Type.BYTES_PER_ELEMENT).buffer as ArrayBuffer, 0, length);
}

/** `length` zero bytes the addon mapped, at any size: never a chunk of this process's heap. */
export function mappedBytes(length: number, populate = true): Uint8Array {
  const fresh = native(() => binding.freshBuffer(length, populate));
  return new Uint8Array(fresh.buffer, fresh.byteOffset, length);
}

/**
 * Gives back now, unmapped, copies the addon made (a plan's reads, mappedBytes)
 * that no one holds any more: Node would run their finalizers only from its
 * event loop. Each must be the whole copy; any other bytes are passed over.
 */
export function releaseBytes(copies: Uint8Array[]): void {
  native(() => binding.releaseCopies(copies));
}

/**
 * Hands the kernel back the whole pages of bytes [from, to) of `buffer`
 * when the addon mapped it (mappedBytes, or a copy; they read as zero
 * after), and says so; any other buffer is left as it is.
 */
export function dropPages(buffer: ArrayBufferLike, from: number, to: number): boolean {
  return native(() => binding.dropPages(buffer as ArrayBuffer, from, to));
}

/**
 * A kept area of mapped bytes for one caller's reads: `bytes(length)` is at
 * least `length` long, the same area while it is long enough (it doubles
 * when not), its contents the caller's until its next call.
 */
export function keptBytes(): (length: number) => Uint8Array {
  let kept: Uint8Array = new Uint8Array(0);
  return (length) => {
    if (kept.length < length) kept = mappedBytes(Math.max(length, 2 * kept.length));
    return kept;
  };
}

/** One native read's address, length pairs, errnos and anonymous flags, RANGES_PER_READ of each. */
export interface RangeScratch {
  words: BigUint64Array;
  errnos: Int32Array;
  flags: Uint8Array;
}

let ranges: RangeScratch | undefined;

/**
 * The RangeScratch, mapped once and kept. Typed arrays made for each read
 * took their bytes from malloc: the doctor's reads of this process before
 * its snapshot left them in the heap it then copied, in use until collected
 * (a 736-byte array, 46 ranges' words, logged inside a snapshot's call, was
 * a 752-byte chunk, the class the diff test counts). Each caller fills and
 * reads it within one synchronous call.
 */
export function rangeScratch(): RangeScratch {
  if (ranges === undefined) {
    const bytes = mappedBytes(RANGES_PER_READ * 21);
    ranges = {
      words: new BigUint64Array(bytes.buffer, bytes.byteOffset, RANGES_PER_READ * 2),
      errnos: new Int32Array(bytes.buffer, bytes.byteOffset + RANGES_PER_READ * 16, RANGES_PER_READ),
      flags: new Uint8Array(bytes.buffer, bytes.byteOffset + RANGES_PER_READ * 20, RANGES_PER_READ),
    };
  }
  return ranges;
}
