// What the allocator decoders take: copied memory, the glibc layout, and
// where libc's data and [heap] are. It holds no live reference: this
// process's copies and another process's look the same.
import { HeapscopeError } from '../errors';
import { GlibcLayout } from './layouts';
import { locateMallocGlobals, MallocGlobals } from './locate';
import { AddressRange } from './locate-input';
import { MemorySource } from './memory-source';
import { Snapshot } from './snapshot';

export interface AllocatorImage {
  layout: GlibcLayout;
  memory: MemorySource;
  /** libc's writable data (see libcDataRegions): where main_arena, mp_ and global_max_fast live. All copied. */
  libcData: readonly AddressRange[];
  /** [heap] from its start to the program break, copied; absent when the process has none. */
  heap?: AddressRange;
}

/** The copies of `ranges`, which must all be in the image's memory. */
export function copiesOf(image: AllocatorImage, ranges: readonly AddressRange[]): Snapshot[] {
  return ranges.map((r) => ({ base: r.start, bytes: image.memory.read(r.start, Number(r.end - r.start)) }));
}

// Located once an image: a copy's torn check and its decode both ask, and
// the search reads every word of libc's data. Shared, so frozen.
const located = new WeakMap<AllocatorImage, MallocGlobals>();

/** main_arena, mp_ and global_max_fast, located in the image's copy of libc's data (frozen: one answer an image). */
export function locateGlobals(image: AllocatorImage): MallocGlobals {
  const known = located.get(image);
  if (known !== undefined) return known;
  const libc = new Set(image.libcData.map((r) => r.start));
  const others = image.memory.ranges.filter((r) => !libc.has(r.base) && !(image.heap !== undefined && r.base === image.heap.start));
  const { layout, ...found } = locateMallocGlobals({
    layout: image.layout,
    data: copiesOf(image, image.libcData),
    ...(image.heap === undefined ? {} : { heap: image.heap }),
    others,
  });
  const globals = Object.freeze({ layout, ...frozen(found) });
  located.set(image, globals);
  return globals;
}

/** Drops what was located in `image`, for the caller that has just written into its copy. */
export function forgetGlobals(image: AllocatorImage): void {
  located.delete(image);
}

function frozen<T>(value: T): T {
  // A typed array with elements cannot be frozen; the located globals hold none.
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}

/** main_arena's and mp_'s addresses, or ERR_ALLOCATOR_NOT_FOUND with the locator's reason. */
export function requireGlobals(globals: MallocGlobals): { mainArena: bigint; mallocPar: bigint } {
  if (!globals.mainArena.found) {
    throw new HeapscopeError('ERR_ALLOCATOR_NOT_FOUND', `main_arena was not found in libc's data: ${globals.mainArena.reason}`);
  }
  if (!globals.mallocPar.found) {
    throw new HeapscopeError('ERR_ALLOCATOR_NOT_FOUND', `mp_ was not found in libc's data: ${globals.mallocPar.reason}`);
  }
  return { mainArena: globals.mainArena.address, mallocPar: globals.mallocPar.address };
}
