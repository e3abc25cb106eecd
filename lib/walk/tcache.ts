// The calling thread's tcache_perthread_struct, decoded.
//
// glibc ≥ 2.30: { uint16_t counts[64]; tcache_entry *entries[64]; } (a
// 0x290-byte chunk); 2.26 to 2.29: char counts (a 0x250-byte chunk). Each
// entry points at the user memory of a cached chunk, whose first word is
// the next entry; glibc ≥ 2.32 stores it safe-linked: next ^ (&next >> 12).
import { revealPointer } from '../allocator/safe-linking';
import { hex } from '../format';
import { readMemory } from '../memory';
import { glibcVersionNumbers } from '../stats';

export const TCACHE_BINS = 64;
/**
 * The struct's chunk size: 0x290 with uint16_t counts, 0x250 with char
 * counts. malloc can hand out a chunk 16 bytes bigger whole (the rest would
 * be below MINSIZE), which happens in a reused, fragmented arena.
 */
export function isTcacheStructSize(size: number, width: 1 | 2 = countWidthOfThisGlibc()): boolean {
  const exact = width === 2 ? 0x290 : 0x250;
  return size === exact || size === exact + 16;
}

/** counts[] entries are uint16_t from glibc 2.30, char before. */
export function countWidthOfThisGlibc(): 1 | 2 {
  const { major, minor } = glibcVersionNumbers();
  return major > 2 || (major === 2 && minor >= 30) ? 2 : 1;
}
/** glibc's cap on a bin's length (the tcache_count tunable's maximum). */
const MAX_COUNT = 65535;

export interface TcacheBin {
  index: number;
  /** The chunk size this bin holds: 32 + 16 × index. */
  chunkSize: number;
  /** counts[index] as stored. */
  count: number;
  /** The user pointers on the list, head first (the next one malloc returns first). */
  entries: bigint[];
  /** Why the list could not be followed to its end, if it could not. */
  reason?: string;
}

export interface Tcache {
  /** The chunk holding the struct. */
  address: bigint;
  /** 2 on glibc ≥ 2.30 (uint16_t counts), 1 before. */
  countWidth: 1 | 2;
  /** Whether next pointers were demangled (glibc ≥ 2.32). */
  safeLinking: boolean;
  bins: TcacheBin[];
  /** Every list was followed to its end, exactly `count` entries long. */
  complete: boolean;
  /** Cached chunks (entries) in all bins. */
  chunks: number;
  /** Their bytes, by bin size. */
  bytes: number;
  /**
   * Entries that lay outside the snapshot and were read live afterwards:
   * the thread may have changed those lists since (walk with `arena: 'all'`
   * to have every arena heap in the snapshot).
   */
  liveReads: number;
}

/** Reads `length` bytes at `address`, or returns undefined when unreadable. */
export type SafeReader = ((address: bigint, length: number) => Uint8Array | undefined) & { live?: number };

/**
 * A reader that serves addresses inside the snapshots from them, and the
 * rest from live memory through readMemory (which can be newer than the
 * snapshots: `live` counts such reads).
 */
export function snapshotReader(snapshots: readonly { base: bigint; bytes: Uint8Array }[]): SafeReader & { live: number } {
  const reader = Object.assign((address: bigint, length: number): Uint8Array | undefined => {
    for (const { base, bytes } of snapshots) {
      if (address >= base && address + BigInt(length) <= base + BigInt(bytes.length)) {
        const at = Number(address - base);
        return bytes.subarray(at, at + length);
      }
    }
    reader.live++;
    try {
      return readMemory(address, length);
    } catch {
      return undefined;
    }
  }, { live: 0 });
  return reader;
}

function u64(bytes: Uint8Array, at: number): bigint {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readBigUInt64LE(at);
}

/**
 * Decodes the struct whose chunk is at `chunk`, reading its user bytes and every entry through `read`. Each list is
 * followed for at most its count, every step checked: an unreadable or
 * misaligned entry ends that list with a reason.
 */
export function decodeTcache(
  chunk: bigint, read: SafeReader, countWidth: 1 | 2 = countWidthOfThisGlibc(), safeLinking = defaultSafeLinking(),
): Tcache {
  const user = chunk + 16n;
  const bins: TcacheBin[] = [];
  const body = read(user, TCACHE_BINS * (countWidth + 8));
  let chunks = 0;
  let bytes = 0;
  let complete = body !== undefined;
  for (let index = 0; index < TCACHE_BINS; index++) {
    const chunkSize = 32 + 16 * index;
    if (body === undefined) {
      bins.push({ index, chunkSize, count: 0, entries: [], reason: `the struct at ${hex(chunk)} is unreadable` });
      continue;
    }
    const count = countWidth === 2 ? body[2 * index] | (body[2 * index + 1] << 8) : body[index];
    const bin: TcacheBin = { index, chunkSize, count, entries: [] };
    let entry = u64(body, TCACHE_BINS * countWidth + 8 * index);
    // At most `count` steps, plus one to see that the list really ends.
    for (let step = 0; entry !== 0n; step++) {
      if (step === Math.min(count, MAX_COUNT)) {
        bin.reason = `the list goes on past its count of ${count} (next ${hex(entry)})`;
        break;
      }
      if (entry % 16n !== 0n) {
        bin.reason = `entry ${step} is ${hex(entry)}, not 16-byte aligned`;
        break;
      }
      const next = read(entry, 8);
      if (next === undefined) {
        bin.reason = `entry ${step} at ${hex(entry)} is unreadable`;
        break;
      }
      bin.entries.push(entry);
      const stored = u64(next, 0);
      entry = safeLinking ? revealPointer(stored, entry) : stored;
    }
    if (bin.reason === undefined && bin.entries.length !== count) {
      bin.reason = `the list ends after ${bin.entries.length} entries, but its count is ${count}`;
    }
    if (bin.reason !== undefined) complete = false;
    chunks += bin.entries.length;
    bytes += bin.entries.length * chunkSize;
    bins.push(bin);
  }
  return { address: chunk, countWidth, safeLinking, bins, complete, chunks, bytes, liveReads: read.live ?? 0 };
}

function defaultSafeLinking(): boolean {
  const { major, minor } = glibcVersionNumbers();
  return major > 2 || (major === 2 && minor >= 32);
}
