// Copies of process memory and typed reads from them. Everything in
// lib/allocator works on these, never on live memory, so the same code reads
// this process's bytes or another's (copied by whatever means).
import { zeroedBytes } from '../fresh-memory';
import { rangeError } from '../errors';
import { TWO_32 } from '../exact';
import { CType } from './struct-layout';

export interface Snapshot {
  /** The address bytes[0] was copied from. */
  base: bigint;
  bytes: Uint8Array;
}

/** The snapshot and offset holding `length` bytes at `address`, or undefined if no one snapshot holds them all. */
export function locateIn(snapshots: readonly Snapshot[], address: bigint, length: number): { bytes: Uint8Array; offset: number } | undefined {
  for (const { base, bytes } of snapshots) {
    if (address >= base && address + BigInt(length) <= base + BigInt(bytes.length)) {
      return { bytes, offset: Number(address - base) };
    }
  }
  return undefined;
}

/** Whether `address` lies in one of the snapshots. */
export function inSnapshots(snapshots: readonly Snapshot[], address: bigint): boolean {
  return locateIn(snapshots, address, 1) !== undefined;
}

/** Joins snapshots that abut (a library's rw-p mapping and the anonymous .bss after it) so no struct straddles two. */
export function joinAdjacent(snapshots: readonly Snapshot[]): Snapshot[] {
  const sorted = [...snapshots].sort((a, b) => (a.base < b.base ? -1 : a.base > b.base ? 1 : 0));
  const out: Snapshot[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.base + BigInt(last.bytes.length) === s.base) {
      // Mapped from 128 KiB on (zeroedBytes): from malloc, a block that size raised the mmap threshold once collected.
      const joined = zeroedBytes(last.bytes.length + s.bytes.length);
      joined.set(last.bytes);
      joined.set(s.bytes, last.bytes.length);
      out[out.length - 1] = { base: last.base, bytes: joined };
    } else {
      out.push(s);
    }
  }
  return out;
}

// One DataView per buffer: the search reads every word of libc's data.
const views = new WeakMap<Uint8Array, DataView>();

/** The DataView over `bytes`, made once per buffer. */
export function view(bytes: Uint8Array): DataView {
  let v = views.get(bytes);
  if (v === undefined) {
    v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    views.set(bytes, v);
  }
  return v;
}

/** Reads one element of C type `type` at `offset`, little-endian: size_t and pointers as bigints, the rest as numbers. */
export function readC(bytes: Uint8Array, offset: number, type: 'size_t' | 'pointer'): bigint;
export function readC(bytes: Uint8Array, offset: number, type: Exclude<CType, 'size_t' | 'pointer'>): number;
export function readC(bytes: Uint8Array, offset: number, type: CType): bigint | number;
export function readC(bytes: Uint8Array, offset: number, type: CType): bigint | number {
  const v = view(bytes);
  switch (type) {
    case 'size_t': case 'pointer': return v.getBigUint64(offset, true);
    case 'int': return v.getInt32(offset, true);
    case 'unsigned int': return v.getUint32(offset, true);
    case 'uint16_t': return v.getUint16(offset, true);
    case 'char': case 'uint8_t': return v.getUint8(offset);
  }
}

/**
 * The little-endian 64-bit word at `offset` as a number, without a BigInt:
 * exact below 2^53, and above it never equal to a user-space address. The
 * searches of libc's data use it to pass over words that cannot be what
 * they look for before reading a place whole.
 */
export function wordNumber(v: DataView, offset: number): number {
  return v.getUint32(offset + 4, true) * TWO_32 + v.getUint32(offset, true);
}

/** Throws ERR_OUT_OF_RANGE unless `size` bytes from `offset` lie within `bytes`. */
export function checkSpan(bytes: Uint8Array, offset: number, size: number, what: string): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > bytes.length) {
    throw rangeError(`${what} needs ${size} bytes at offset ${offset}, but the buffer has ${bytes.length}`);
  }
}
