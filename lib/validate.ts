// Argument checks shared by every public call. They run before glibc is
// called, so a bad size can never reach the allocator.
import { isProxy, isUint8Array } from 'node:util/types';
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

/**
 * A size as the addon takes it: a safe whole number as it is (no BigInt on
 * the common path), anything else checked by {@link toSize}.
 */
export function sizeArg(value: unknown, name: string): number | bigint {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : toSize(value, name);
}

/** A small non-negative integer (offsets, counts, indices) as a number. */
export function toIndex(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max) return value;
  return Number(toSize(value, name, BigInt(max)));
}

/** An address: any bigint in 0 .. 2^64-1 (numbers cannot hold addresses exactly). */
export function toAddress(value: unknown, name = 'address'): bigint {
  if (typeof value !== 'bigint') throw typeError(`${name} must be a bigint, got ${describe(value)}`);
  if (value < 0n || value >= 1n << 64n) throw rangeError(`${name} must fit in 64 bits, got ${value}`);
  return value;
}

/**
 * What a value is, for messages: `null`, a `typeof` name, or an object's
 * class name. Never throws: it reads no getter and survives Proxies.
 */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  try {
    if (Array.isArray(value)) return 'Array';
    const proto: unknown = Object.getPrototypeOf(value);
    const ctor: unknown = proto === null ? undefined : Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
    const name: unknown = typeof ctor === 'function' ? Object.getOwnPropertyDescriptor(ctor, 'name')?.value : undefined;
    return typeof name === 'string' && name !== '' ? name : 'object';
  } catch {
    return 'object';
  }
}

// Options, plan steps and lookup tables are read through their own
// properties only: an inherited name (`constructor`, `toString`) is not a
// tunable, and `Object.prototype.keep = true` set by anyone must not keep a
// plan's blocks. Each property is read once, so a getter cannot hand the
// check one value and the use another; a getter or Proxy trap that throws
// becomes an ERR_INVALID_ARG_TYPE with the original as its `cause`.

/** `table[key]` when `key` is one of the table's own keys, else undefined. */
export function lookup<T>(table: { readonly [key: string]: T }, key: unknown): T | undefined {
  return typeof key === 'string' && Object.hasOwn(table, key) ? table[key] : undefined;
}

/** The value of `value`'s own property `key` (undefined when it has none); `name` labels errors. */
export function ownProperty(value: object, key: string, name: string): unknown {
  try {
    const property = Reflect.getOwnPropertyDescriptor(value, key);
    if (property === undefined) return undefined;
    if ('value' in property) return property.value;
    return property.get === undefined ? undefined : Reflect.apply(property.get, value, []);
  } catch (error) {
    throw typeError(`${name}.${key} could not be read: ${errorMessage(error)}`, error);
  }
}

/**
 * {@link ownProperty} for an object that is not a Proxy: `Object.hasOwn`
 * runs no code, so the one [[Get]] that follows is still the only read, of
 * an own property only, without a descriptor object per property (a plan
 * of 4,000 steps read 40,000 of them).
 */
function ownValue(value: object, key: string | number, name: string): unknown {
  try {
    return Object.hasOwn(value, key) ? (value as Record<string | number, unknown>)[key] : undefined;
  } catch (error) {
    throw readFailed(`${name}.${key}`, error);
  }
}

/** The error for a property whose read threw `error` (a getter, or a Proxy's trap). */
export function readFailed(name: string, error: unknown): Error {
  return typeError(`${name} could not be read: ${errorMessage(error)}`, error);
}

/**
 * An object of named fields (options, a plan step), read once into a record
 * with no prototype: only `keys`, only own properties. Anything but a
 * non-array object is an ERR_INVALID_ARG_TYPE.
 */
export function readRecord<K extends string>(value: unknown, name: string, keys: readonly K[]): { [P in K]?: unknown } {
  const proxy = recordKind(value, name);
  // Every key is defined (undefined when absent), so nothing is looked up on
  // the prototype, and defined rather than assigned, so no setter or
  // getter-only accessor on Object.prototype is met; an ordinary object keeps
  // one hidden class per key list, where Object.create(null) made a
  // dictionary of every record.
  const record = {} as { [P in K]?: unknown };
  for (const key of keys) defineOwn(record, key, readOwn(value as object, key, name, proxy));
  return record;
}

/**
 * Sets `key` on an object heapscope made as an own data property, as an
 * object literal would: an assignment would call a setter, or throw at a
 * getter-only accessor, that someone put on Object.prototype. Where the key
 * is nowhere on the object or its prototypes, an assignment makes just that
 * property, and costs a fraction of defineProperty's descriptor (a map of
 * 100 regions spent 18% of its parse here).
 */
export function defineOwn<T extends object>(target: T, key: PropertyKey, value: unknown): void {
  if (!(key in target) && Object.isExtensible(target)) (target as Record<PropertyKey, unknown>)[key] = value;
  else Object.defineProperty(target, key, descriptor({ value, writable: true, enumerable: true, configurable: true }));
}

/**
 * A property descriptor with no prototype: defineProperty reads `get`,
 * `set`, `value`, `writable`, `enumerable` and `configurable` through the
 * descriptor's prototype chain, where anyone may have put them (an
 * inherited `value` makes every accessor descriptor a TypeError).
 */
export function descriptor(fields: PropertyDescriptor): PropertyDescriptor {
  return Object.setPrototypeOf(fields, null) as PropertyDescriptor;
}

/**
 * An optional field of a record heapscope made, read as an own property: a
 * field left out is not looked up on Object.prototype, where anyone may
 * have put a value or a throwing getter under the same name.
 */
export function own<T extends object, K extends keyof T>(record: T, key: K): T[K] | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/**
 * Fields of `target` made together by `build` when one of them is first
 * read. Each is an own enumerable accessor, so spreads, JSON and toEqual see
 * it; once built they become plain data properties (on a frozen object the
 * accessors keep returning them). Setting one builds the others first.
 */
export function lazyFields<T extends object, K extends keyof T & string>(target: T, keys: readonly K[], build: () => Pick<T, K>): void {
  let built: Pick<T, K> | undefined;
  const fields = (): Pick<T, K> => {
    if (built === undefined) {
      const made = build();
      built = {} as Pick<T, K>;
      for (const key of keys) defineOwn(built, key, made[key]);
    }
    return built;
  };
  const settle = (): void => {
    for (const key of keys) {
      try {
        defineOwn(target, key, built![key]);
      } catch {
        // frozen or sealed by its caller: the accessors stay
      }
    }
  };
  for (const key of keys) {
    Object.defineProperty(target, key, descriptor({
      get() {
        const value = fields()[key];
        settle();
        return value;
      },
      set(value) {
        defineOwn(fields(), key, value);
        settle();
      },
      enumerable: true,
      configurable: true,
    }));
  }
}

/**
 * For a caller that reads a record's fields one at a time, as
 * {@link readRecord} reads them (a plan step, whose op says which fields it
 * has): throws unless `value` is a non-array object; true for a Proxy.
 */
export function recordKind(value: unknown, name: string): boolean {
  if (!isObject(value, name)) throw typeError(`${name} must be an object, got ${describe(value)}`);
  return isProxy(value);
}

/** One own property of an object {@link recordKind} passed (`proxy` is what it said), read once. */
export function readOwn(value: object, key: string, name: string, proxy: boolean): unknown {
  return proxy ? ownProperty(value, key, name) : ownValue(value, key, name);
}

/** An options argument: as {@link readRecord}, with `undefined` (left out) read as `{}`. */
export function readOptions<K extends string>(value: unknown, name: string, keys: readonly K[]): { [P in K]?: unknown } {
  return value === undefined ? Object.create(null) : readRecord(value, name, keys);
}

/** Every own key of an object, symbols and non-enumerable ones included; none of its values is read. */
export function ownKeys(value: unknown, name: string): (string | symbol)[] {
  if (!isObject(value, name)) throw typeError(`${name} must be an object, got ${describe(value)}`);
  try {
    return Reflect.ownKeys(value);
  } catch (error) {
    throw typeError(`${name} could not be read: ${errorMessage(error)}`, error);
  }
}

/** The own enumerable string-keyed properties of an object (a name → value map), each read once. */
export function readEntries(value: unknown, name: string): [string, unknown][] {
  if (!isObject(value, name)) throw typeError(`${name} must be an object, got ${describe(value)}`);
  let keys: string[];
  try {
    keys = Object.keys(value);
  } catch (error) {
    throw typeError(`${name} could not be read: ${errorMessage(error)}`, error);
  }
  return keys.map((key) => [key, ownProperty(value, key, name)]);
}

/** A copy of an array's own elements, read once each; at most `max` of them. */
export function readArray(value: unknown, name: string, max = 2 ** 32 - 1): unknown[] {
  let array: boolean;
  try {
    array = Array.isArray(value);
  } catch (error) {
    throw typeError(`${name} could not be read: ${errorMessage(error)}`, error);
  }
  if (!array) throw typeError(`${name} must be an array, got ${describe(value)}`);
  const length = ownProperty(value as object, 'length', name);
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0) {
    throw typeError(`${name}.length must be a whole number, got ${describe(length)}`);
  }
  if (length > max) throw rangeError(`${name} may have at most ${max} elements, got ${length}`);
  const copy: unknown[] = new Array(length);
  if (isProxy(value)) for (let i = 0; i < length; i++) copy[i] = ownProperty(value as object, String(i), name);
  else copyElements(value as unknown[], copy, name);
  return copy;
}

/**
 * ownValue's read of each element, written out here: its one keyed load,
 * which reads the named fields of every record the package checks too, is
 * slow for all of them; this one meets arrays and numeric keys alone.
 */
function copyElements(array: unknown[], copy: unknown[], name: string): void {
  let i = 0;
  try {
    for (; i < copy.length; i++) copy[i] = Object.hasOwn(array, i) ? array[i] : undefined;
  } catch (error) {
    throw readFailed(`${name}.${i}`, error);
  }
}

/**
 * A Uint8Array (a Buffer is one) that still has its memory. Checked without
 * touching a Proxy's traps; a view of a transferred (detached) ArrayBuffer
 * is an ERR_INVALID_ARG_TYPE rather than a TypeError from deep inside.
 */
export function toBytes(value: unknown, name: string, expected = 'a Buffer or Uint8Array'): Uint8Array {
  if (!isUint8Array(value)) throw typeError(`${name} must be ${expected}, got ${describe(value)}`);
  if (isDetached(value.buffer)) {
    throw typeError(`${name} is a view of a detached ArrayBuffer (transferred or structuredClone()d away): it has no bytes`);
  }
  return value;
}

// ArrayBuffer.prototype.detached is newer than Node 20: a detached buffer
// reads as 0 bytes long, and no new view of it can be made.
function isDetached(buffer: ArrayBufferLike): boolean {
  if (buffer.byteLength !== 0) return false;
  try {
    new Uint8Array(buffer);
    return false;
  } catch {
    return true;
  }
}

function isObject(value: unknown, name: string): value is object {
  if (typeof value !== 'object' || value === null) return false;
  try {
    return !Array.isArray(value);
  } catch (error) {
    throw typeError(`${name} could not be read: ${errorMessage(error)}`, error);
  }
}

function errorMessage(error: unknown): string {
  try {
    return error instanceof Error ? String(error.message) : describe(error);
  } catch {
    return describe(error);
  }
}
