// Allocations heapscope hands out, and the calls that make and free them.
import path from 'node:path';
import { inspect } from 'node:util';
import { AddressTable } from './address-table';
import { binding } from './binding';
import { ChunkHeader, readChunkHeader } from './chunk';
import { fromNative, HeapscopeError, illegalConstructor, native, rangeError, typeError } from './errors';
import { bigintOf } from './exact';
import { hex } from './format';
import { MemoryRegion, regionOf } from './maps';
import { MAX_READ, readMemory } from './memory';
import { describe, descriptor, Size, sizeArg, toBytes, toIndex, toSize } from './validate';
import { InspectContext, MimeBundle, presenter } from './presenters';

export type AllocationCall = 'malloc' | 'calloc' | 'realloc' | 'alignedAlloc' | 'plan';

// malloc, free and usableSize catch the addon's errors inline: through
// `native(() => …)` each call also made a closure and a call V8 did not
// inline, ~20 ns of a malloc + free that takes ~100.

// Live allocations of this thread, by address (a number: the addon hands
// pointers out as numbers, exact below 2^53). Strong references on
// purpose: native memory stays until free() is called, as in C.
const live = new AddressTable<Allocation>();

// Handles made since the table was last brought up to date, in order. Most
// handles are freed before anything asks for a block by its address (a
// malloc + free in a loop), and a set and a delete in the table cost 15–30
// ns of a ~100 ns malloc + free: the table takes the ones still live when
// it is next read, or when MINTED_MAX are waiting. The newest of them waits
// in `newest`, the rest in `minted`: a block freed before the next malloc
// touches only that slot. (Pushed onto and popped off the array, a malloc +
// free took 2.5-5.4 ns more, in turns with the slot in one process.)
const MINTED_MAX = 4096;
const minted = new Array<Allocation | undefined>(MINTED_MAX).fill(undefined);
let mintedCount = 0;
let newest: Allocation | undefined;
let settle: () => void;

/** The live table, with every handle made since it was last read. */
function liveTable(): AddressTable<Allocation> {
  if (newest !== undefined || mintedCount !== 0) settle();
  return live;
}

// Only this module makes handles: a handle frees a real block, so one made
// from outside (`new Allocation(someAddress, …)`) could free a block that
// another handle still calls live.
const MINT = Symbol('mint');

// Each copy of heapscope marks its Allocation prototype with where it was
// loaded from, under a key shared by all copies: a handle from another copy
// is then recognised as one, and named, instead of "got Allocation".
const COPY_KEY = Symbol.for('heapscope.Allocation');
const HERE = path.resolve(__dirname, '..');

let mint: (address: number, requested: number, call: AllocationCall) => Allocation;
let isHandle: (value: unknown) => value is Allocation;
let release: (allocation: Allocation, how: 'freed' | 'reallocated') => void;
let numberOf: (allocation: Allocation) => number;

/** How an allocation shows itself; installed by the view layer. */
export const allocationViews = presenter<{
  inspect(allocation: Allocation, dead: false | 'freed' | 'reallocated', depth: number, options?: InspectContext): string;
  bundle(allocation: Allocation): MimeBundle;
}>('Allocation');

/**
 * A block of memory from the process's real glibc malloc. All getters read
 * the allocator afresh; after `free()` (or a `realloc` that replaced it)
 * every use throws `ERR_FREED`. Handles come only from malloc(), calloc(),
 * realloc(), alignedAlloc() and runPlan(…, { keep: true }): `new
 * Allocation()` throws `ERR_ILLEGAL_CONSTRUCTOR`.
 */
export class Allocation {
  /** The pointer as a number: what the addon takes and the live table is keyed by. */
  readonly #at: number;
  #address: bigint | undefined;
  /** Bytes asked for (count × size for calloc). */
  readonly requested: number;
  /** The call that made it. */
  readonly call: AllocationCall;
  #freed: false | 'freed' | 'reallocated' = false;

  static {
    mint = (address, requested, call) => new Allocation(MINT, address, requested, call);
    isHandle = (value): value is Allocation => typeof value === 'object' && value !== null && #freed in value;
    release = (allocation, how) => allocation.#release(how);
    numberOf = (allocation) => allocation.#at;
    settle = () => {
      for (let i = 0; i < mintedCount; i++) {
        const a = minted[i]!;
        if (a.#freed === false) live.set(a.#at, a);
        minted[i] = undefined;
      }
      mintedCount = 0;
      if (newest !== undefined && newest.#freed === false) live.set(newest.#at, newest);
      newest = undefined;
    };
  }

  private constructor(token: typeof MINT, address: number, requested: number, call: AllocationCall) {
    if (token !== MINT) {
      throw illegalConstructor(
        'Allocation handles come from malloc(), calloc(), realloc(), alignedAlloc() and runPlan(…, { keep: true }); new Allocation() is not allowed',
      );
    }
    this.#at = address;
    this.requested = requested;
    this.call = call;
    if (newest !== undefined) {
      minted[mintedCount++] = newest;
      newest = undefined;
      if (mintedCount === MINTED_MAX) settle();
    }
    newest = this;
  }

  /** The pointer malloc returned (made a bigint when first asked for). */
  get address(): bigint {
    const self = handle(this, 'address');
    return self.#address ??= bigintOf(self.#at);
  }

  get freed(): boolean {
    return handle(this, 'freed').#freed !== false;
  }

  /** `malloc_usable_size`: the bytes you may really use. */
  get usableSize(): number {
    const self = Allocation.#live(this, 'usableSize');
    try {
      return binding.usableSize(self.#at);
    } catch (error) {
      throw fromNative(error);
    }
  }

  /** The chunk header in front of the block, read now. */
  get chunk(): ChunkHeader {
    return readChunkHeader(Allocation.#live(this, 'chunk').address);
  }

  /** The /proc/self/maps region holding the block, read now. */
  get region(): MemoryRegion | undefined {
    return regionOf(Allocation.#live(this, 'region').address);
  }

  free(): void {
    const self = handle(this, 'free');
    if (self.#freed !== false) {
      throw new HeapscopeError(
        'ERR_DOUBLE_FREE',
        `double free of ${hex(self.address)}: it was already ${self.#freed}`,
      );
    }
    try {
      binding.free(self.#at);
    } catch (error) {
      throw fromNative(error);
    }
    self.#release('freed');
  }

  /** Copies `length` bytes from `offset` (default: to the end of the usable size, at most MAX_READ). */
  read(offset: Size = 0, length?: Size): Buffer {
    const self = Allocation.#live(this, 'read');
    const [start, count] = self.#range('read', offset, length);
    if (length === undefined && count > MAX_READ) {
      throw rangeError(
        `read() with no length would copy ${count} bytes (offset ${start} to the end of the block), above ` +
          `MAX_READ (${MAX_READ} bytes, 64 MiB), the most one read copies: read it in pieces with read(offset, length)`,
      );
    }
    return readMemory(self.address + start, count);
  }

  /** Writes bytes (a string is written as UTF-8) at `offset`, within the usable size. */
  write(offset: Size, bytes: Uint8Array | string): void {
    const self = Allocation.#live(this, 'write');
    const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytesOf(bytes);
    const [start] = self.#range('write', offset, buffer.length);
    native(() => binding.writeAllocation(self.#at, start, buffer));
  }

  /** Sets every usable byte to `byte` (0–255). */
  fill(byte: number): void {
    const self = Allocation.#live(this, 'fill');
    const value = toIndex(byte, 'byte', 255);
    native(() => binding.fillAllocation(self.#at, value));
  }

  /** What a notebook shows: Deno's Jupyter kernel calls this on a cell's value. */
  [Symbol.for('Jupyter.display')](): MimeBundle {
    return allocationViews.views.bundle(handle(this, 'Jupyter.display'));
  }

  /** ijavascript's display hook. */
  _toMime(): MimeBundle {
    return allocationViews.views.bundle(handle(this, '_toMime'));
  }

  /** At the prompt: `Allocation <0x1b0c600 malloc(10): 24 usable, chunk 32 [P] in [heap]>`. */
  [inspect.custom](depth: number, options: InspectContext): string {
    const self = handle(this, 'inspect');
    return allocationViews.views.inspect(self, self.#freed, depth, options);
  }

  /** Marks the handle dead once glibc no longer owns it for us. */
  #release(how: 'freed' | 'reallocated'): void {
    this.#freed = how;
    // A handle freed before anything read the table never enters it.
    if (newest === this) newest = undefined;
    else if (mintedCount !== 0 && minted[mintedCount - 1] === this) minted[--mintedCount] = undefined;
    else live.delete(this.#at);
  }

  /** `self` as a handle that is still live. */
  static #live(self: unknown, what: string): Allocation {
    const a = handle(self, what);
    if (a.#freed !== false) {
      throw new HeapscopeError('ERR_FREED', `${what} on ${hex(a.address)}, which was already ${a.#freed}`);
    }
    return a;
  }

  #range(what: string, offset: Size, length: Size | undefined): [bigint, bigint] {
    const usable = BigInt(this.usableSize);
    const start = toSize(offset, 'offset');
    const count = length === undefined ? (start <= usable ? usable - start : 0n) : toSize(length, 'length');
    if (start + count > usable) {
      throw rangeError(`${what} of ${count} bytes at offset ${start} runs past the usable size ${usable}`);
    }
    return [start, count];
  }
}

Object.defineProperty(Allocation.prototype, COPY_KEY, descriptor({ value: HERE }));

/** `value` as one of this copy's handles (dead or alive), or a TypeError saying what it is instead. */
function handle(value: unknown, what: string): Allocation {
  if (isHandle(value)) return value;
  throw notAHandle(value, `${what} takes an Allocation`);
}

function notAHandle(value: unknown, expected: string): TypeError {
  const copy = copyOf(value);
  if (copy !== undefined && copy.prototype !== Allocation.prototype) {
    return typeError(
      `${expected}, got an Allocation from another copy of heapscope (loaded from ${copy.from}; this copy was loaded from ${HERE}). ` +
        'Each copy has its own addon and live set: use a block only through the copy that allocated it, ' +
        'and make both dependents share one heapscope (npm dedupe, or one version range)',
    );
  }
  if (copy !== undefined) {
    return typeError(`${expected}, got an object that is not a handle heapscope made (new handles come only from malloc() and the like)`);
  }
  return typeError(`${expected}, got ${describe(value)}`);
}

/** The Allocation prototype `value` inherits from, of whichever copy of heapscope, and where that copy lives. */
function copyOf(value: unknown): { prototype: object; from: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  try {
    for (let p: unknown = Object.getPrototypeOf(value); typeof p === 'object' && p !== null; p = Object.getPrototypeOf(p)) {
      const from: unknown = Object.getOwnPropertyDescriptor(p, COPY_KEY)?.value;
      if (typeof from === 'string') return { prototype: p, from };
    }
  } catch {
    // A Proxy whose traps throw is no handle of any copy.
  }
  return undefined;
}

/** The bytes of a Uint8Array as a Buffer over the same memory. */
function bytesOf(value: unknown): Buffer {
  const bytes = toBytes(value, 'bytes', 'a Uint8Array or a string');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

if (typeof Symbol.dispose === 'symbol') {
  Object.defineProperty(Allocation.prototype, Symbol.dispose, descriptor({
    value(this: Allocation) {
      if (!handle(this, 'Symbol.dispose').freed) this.free();
    },
  }));
}

export interface Allocation {
  /** Frees the block if it is still live (`using a = malloc(10)`). */
  [Symbol.dispose](): void;
}

/** @internal A handle for a block the addon has just registered as live. */
export function mintAllocation(address: number, requested: number, call: AllocationCall): Allocation {
  return mint(address, requested, call);
}

/** `malloc(size)`. */
export function malloc(size: Size): Allocation {
  const n = sizeArg(size, 'size');
  let address: number;
  try {
    address = binding.malloc(n);
  } catch (error) {
    throw fromNative(error);
  }
  return mint(address, Number(n), 'malloc');
}

/** `calloc(count, size)`: zeroed memory; overflow of count × size is glibc's ENOMEM. */
export function calloc(count: Size, size: Size): Allocation {
  const c = toSize(count, 'count');
  const n = toSize(size, 'size');
  return mint(native(() => binding.calloc(c, n)), Number(c * n), 'calloc');
}

/**
 * `realloc(allocation, size)`: returns a new handle (possibly at the same
 * address); the old handle is dead from then on. `size` 0 is refused
 * (glibc would free the block: call `free()`). On failure the old block
 * stays valid and `ERR_ALLOC_FAILED` is thrown.
 */
export function realloc(allocation: Allocation | bigint, size: Size): Allocation {
  const old = liveAllocation(allocation, 'realloc');
  const n = toSize(size, 'size');
  if (n === 0n) throw rangeError('realloc to 0 bytes would free the block; call free() instead');
  const address = native(() => binding.realloc(numberOf(old), n));
  release(old, 'reallocated');
  return mint(address, Number(n), 'realloc');
}

/** `posix_memalign`: `alignment` must be a power of two and a multiple of 8. */
export function alignedAlloc(alignment: Size, size: Size): Allocation {
  const a = toSize(alignment, 'alignment');
  if (a < 8n || (a & (a - 1n)) !== 0n) {
    throw rangeError(`alignment must be a power of two and at least 8, got ${a}`);
  }
  const n = toSize(size, 'size');
  return mint(native(() => binding.memalign(a, n)), Number(n), 'alignedAlloc');
}

/** `free(allocation)`. A bigint address must be a live heapscope allocation. */
export function free(allocation: Allocation | bigint): void {
  liveAllocation(allocation, 'free').free();
}

/** `malloc_usable_size(allocation)`. */
export function mallocUsableSize(allocation: Allocation | bigint): number {
  return liveAllocation(allocation, 'mallocUsableSize').usableSize;
}

/** Every allocation heapscope made in this thread and nobody has freed yet. */
export function liveAllocations(): Allocation[] {
  return [...liveTable().values()];
}

/** @internal How many handles of this thread are live (a walk that finds none looks up no chunk). */
export function liveCount(): number {
  return liveTable().size;
}

/** @internal The live allocation whose block starts at `address` (a number: the walk's chunk addresses plus 16). */
export function liveAt(address: number): Allocation | undefined {
  return liveTable().get(address);
}

/** @internal The addresses of the live blocks that start in [lo, hi), ascending. */
export function liveWithin(lo: number, hi: number): Float64Array {
  return liveTable().keysWithin(lo, hi).sort();
}

/** The live heapscope allocation at `address`, if there is one. */
export function allocationAt(address: bigint): Allocation | undefined {
  return lookupLive(address);
}

/** A bigint key as the live table's number; addresses at or above 2^53 are never live. */
function lookupLive(address: unknown): Allocation | undefined {
  return typeof address === 'bigint' && address > 0n && address < 1n << 53n ? liveTable().get(Number(address)) : undefined;
}

function liveAllocation(value: unknown, call: string): Allocation {
  if (isHandle(value)) {
    // A dead handle is reported as a double free by free() itself.
    if (value.freed && call !== 'free') {
      throw new HeapscopeError('ERR_FREED', `${call} of ${hex(value.address)}, which was already freed`);
    }
    return value;
  }
  if (typeof value === 'bigint') {
    const found = lookupLive(value);
    if (found !== undefined) return found;
    throw new HeapscopeError(
      'ERR_UNKNOWN_POINTER',
      `${call}: ${hex(value)} is not a live heapscope allocation of this thread`,
    );
  }
  throw notAHandle(value, `${call} takes an Allocation or a bigint address`);
}
