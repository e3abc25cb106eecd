// Allocations heapscope hands out, and the calls that make and free them.
import { inspect } from 'node:util';
import { binding } from './binding';
import { ChunkHeader, readChunkHeader } from './chunk';
import { HeapscopeError, native, rangeError, typeError } from './errors';
import { hex } from './format';
import { MemoryRegion, regionOf } from './maps';
import { readMemory } from './memory';
import { describe, Size, toIndex, toSize } from './validate';
import { InspectContext, inspectAllocation } from './views/inspect';
import { allocationBundle, MimeBundle } from './views/jupyter';

export type AllocationCall = 'malloc' | 'calloc' | 'realloc' | 'alignedAlloc' | 'plan';

// Live allocations of this thread, by address. Strong references on
// purpose: native memory stays until free() is called, as in C.
const live = new Map<bigint, Allocation>();

/**
 * A block of memory from the process's real glibc malloc. All getters read
 * the allocator afresh; after `free()` (or a `realloc` that replaced it)
 * every use throws `ERR_FREED`.
 */
export class Allocation {
  /** The pointer malloc returned. */
  readonly address: bigint;
  /** Bytes asked for (count × size for calloc). */
  readonly requested: number;
  /** The call that made it. */
  readonly call: AllocationCall;
  #freed: false | 'freed' | 'reallocated' = false;

  /** @internal Use malloc(), calloc(), realloc() or alignedAlloc(). */
  constructor(address: bigint, requested: number, call: AllocationCall) {
    this.address = address;
    this.requested = requested;
    this.call = call;
    live.set(address, this);
  }

  get freed(): boolean {
    return this.#freed !== false;
  }

  /** `malloc_usable_size`: the bytes you may really use. */
  get usableSize(): number {
    this.#check('usableSize');
    return Number(native(() => binding.usableSize(this.address)));
  }

  /** The chunk header in front of the block, read now. */
  get chunk(): ChunkHeader {
    this.#check('chunk');
    return readChunkHeader(this.address);
  }

  /** The /proc/self/maps region holding the block, read now. */
  get region(): MemoryRegion | undefined {
    this.#check('region');
    return regionOf(this.address);
  }

  free(): void {
    if (this.#freed !== false) {
      throw new HeapscopeError(
        'ERR_DOUBLE_FREE',
        `double free of ${hex(this.address)}: it was already ${this.#freed}`,
      );
    }
    native(() => binding.free(this.address));
    this.#release('freed');
  }

  /** Copies `length` bytes from `offset` (default: to the end of the usable size). */
  read(offset: Size = 0, length?: Size): Buffer {
    const [start, count] = this.#range('read', offset, length);
    return readMemory(this.address + start, count);
  }

  /** Writes bytes (a string is written as UTF-8) at `offset`, within the usable size. */
  write(offset: Size, bytes: Uint8Array | string): void {
    const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8')
      : bytes instanceof Uint8Array ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      : undefined;
    if (buffer === undefined) throw typeError(`bytes must be a Uint8Array or a string, got ${describe(bytes)}`);
    const [start] = this.#range('write', offset, buffer.length);
    native(() => binding.writeAllocation(this.address, start, buffer));
  }

  /** Sets every usable byte to `byte` (0–255). */
  fill(byte: number): void {
    this.#check('fill');
    const value = toIndex(byte, 'byte', 255);
    native(() => binding.fillAllocation(this.address, value));
  }

  /** What a notebook shows: Deno's Jupyter kernel calls this on a cell's value. */
  [Symbol.for('Jupyter.display')](): MimeBundle {
    return allocationBundle(this);
  }

  /** ijavascript's display hook. */
  _toMime(): MimeBundle {
    return allocationBundle(this);
  }

  /** At the prompt: `Allocation <0x1b0c600 malloc(10): 24 usable, chunk 32 [P] in [heap]>`. */
  [inspect.custom](depth: number, options: InspectContext): string {
    return inspectAllocation(this, this.#freed, depth, options);
  }

  /** @internal Marks the handle dead once glibc no longer owns it for us. */
  #release(how: 'freed' | 'reallocated'): void {
    this.#freed = how;
    live.delete(this.address);
  }

  /** @internal */
  static release(allocation: Allocation, how: 'freed' | 'reallocated'): void {
    allocation.#release(how);
  }

  #check(what: string): void {
    if (this.#freed !== false) {
      throw new HeapscopeError(
        'ERR_FREED',
        `${what} on ${hex(this.address)}, which was already ${this.#freed}`,
      );
    }
  }

  #range(what: string, offset: Size, length: Size | undefined): [bigint, bigint] {
    this.#check(what);
    const usable = BigInt(this.usableSize);
    const start = toSize(offset, 'offset');
    const count = length === undefined ? (start <= usable ? usable - start : 0n) : toSize(length, 'length');
    if (start + count > usable) {
      throw rangeError(`${what} of ${count} bytes at offset ${start} runs past the usable size ${usable}`);
    }
    return [start, count];
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Object.defineProperty(Allocation.prototype, Symbol.dispose, {
    value(this: Allocation) {
      if (!this.freed) this.free();
    },
  });
}

export interface Allocation {
  /** Frees the block if it is still live (`using a = malloc(10)`). */
  [Symbol.dispose](): void;
}

/** @internal A handle for a block the addon has just registered as live. */
export function mintAllocation(address: bigint, requested: number, call: AllocationCall): Allocation {
  return new Allocation(address, requested, call);
}

/** `malloc(size)`. */
export function malloc(size: Size): Allocation {
  const n = toSize(size, 'size');
  return new Allocation(native(() => binding.malloc(n)), Number(n), 'malloc');
}

/** `calloc(count, size)`: zeroed memory; overflow of count × size is glibc's ENOMEM. */
export function calloc(count: Size, size: Size): Allocation {
  const c = toSize(count, 'count');
  const n = toSize(size, 'size');
  return new Allocation(native(() => binding.calloc(c, n)), Number(c * n), 'calloc');
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
  const address = native(() => binding.realloc(old.address, n));
  Allocation.release(old, 'reallocated');
  return new Allocation(address, Number(n), 'realloc');
}

/** `posix_memalign`: `alignment` must be a power of two and a multiple of 8. */
export function alignedAlloc(alignment: Size, size: Size): Allocation {
  const a = toSize(alignment, 'alignment');
  if (a < 8n || (a & (a - 1n)) !== 0n) {
    throw rangeError(`alignment must be a power of two and at least 8, got ${a}`);
  }
  const n = toSize(size, 'size');
  return new Allocation(native(() => binding.memalign(a, n)), Number(n), 'alignedAlloc');
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
  return [...live.values()];
}

/** The live heapscope allocation at `address`, if there is one. */
export function allocationAt(address: bigint): Allocation | undefined {
  return live.get(address);
}

function liveAllocation(value: unknown, call: string): Allocation {
  if (value instanceof Allocation) {
    // A dead handle is reported as a double free by free() itself.
    if (value.freed && call !== 'free') {
      throw new HeapscopeError('ERR_FREED', `${call} of ${hex(value.address)}, which was already freed`);
    }
    return value;
  }
  if (typeof value === 'bigint') {
    const found = live.get(value);
    if (found !== undefined) return found;
    throw new HeapscopeError(
      'ERR_UNKNOWN_POINTER',
      `${call}: ${hex(value)} is not a live heapscope allocation of this thread`,
    );
  }
  throw typeError(`${call} takes an Allocation or a bigint address, got ${describe(value)}`);
}
