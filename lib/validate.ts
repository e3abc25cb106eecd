// Argument checks shared by every public call. They run before glibc is
// called, so a bad size can never reach the allocator.
import { rangeError, typeError } from './errors';

/** A byte count or an address: a non-negative integer as number or bigint. */
export type Size = number | bigint;

export const PTRDIFF_MAX = (1n << 63n) - 1n;

/** Validates a size and returns it as bigint; `max` defaults to PTRDIFF_MAX. */
export function toSize(value: unknown, name: string, max: bigint = PTRDIFF_MAX): bigint {
  let v: bigint;
  if (typeof value === 'bigint') {
    v = value;
  } else if (typeof value === 'number') {
    if (Number.isNaN(value)) throw rangeError(`${name} must be a number, not NaN`);
    if (!Number.isFinite(value)) throw rangeError(`${name} must be finite, got ${value}`);
    if (!Number.isInteger(value)) throw rangeError(`${name} must be a whole number, got ${value}`);
    v = BigInt(value);
  } else {
    throw typeError(`${name} must be a number or a bigint, got ${describe(value)}`);
  }
  if (v < 0n) throw rangeError(`${name} must not be negative, got ${v}`);
  if (v > max) throw rangeError(`${name} must be at most ${max}, got ${v}`);
  return v;
}

/** A small non-negative integer (offsets, counts, indices) as a number. */
export function toIndex(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  return Number(toSize(value, name, BigInt(max)));
}

/** An address: any bigint in 0 .. 2^64-1 (numbers cannot hold addresses exactly). */
export function toAddress(value: unknown, name = 'address'): bigint {
  if (typeof value !== 'bigint') throw typeError(`${name} must be a bigint, got ${describe(value)}`);
  if (value < 0n || value >= 1n << 64n) throw rangeError(`${name} must fit in 64 bits, got ${value}`);
  return value;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return value.constructor?.name ?? 'object';
  return typeof value;
}
