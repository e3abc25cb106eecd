// Byte images of malloc's globals built from a layout, as glibc would leave
// them: for locating them in releases this machine does not run.
import { binAddress, initialTop } from '../../lib/allocator/decode';
import { GlibcLayout } from '../../lib/allocator/layouts';
import { StructLayout } from '../../lib/allocator/struct-layout';

/** Writes element `index` of field `name` of a `struct` that starts at `bytes[at]`. */
export function put(bytes: Buffer, at: number, struct: StructLayout, name: string, value: bigint | number, index = 0): void {
  const f = struct.fields.find((x) => x.name === name);
  if (f === undefined) throw new Error(`${struct.name} has no ${name}`);
  const width = f.size / f.count;
  const o = at + f.offset + index * width;
  if (width === 8) bytes.writeBigUInt64LE(BigInt(value), o);
  else if (width === 4) bytes.writeInt32LE(Number(value), o);
  else if (width === 2) bytes.writeUInt16LE(Number(value), o);
  else bytes.writeUInt8(Number(value), o);
}

export interface ArenaImage {
  /** 'uninitialized': as .data holds it; 'no-memory': after malloc_init_state; 'heap': with chunks in `heap`. */
  state: 'uninitialized' | 'no-memory' | 'heap';
  heap?: { start: bigint; end: bigint };
}

/** Writes main_arena at `bytes[at]`, which is address `address`. */
export function writeMainArena(bytes: Buffer, at: number, address: bigint, layout: GlibcLayout, image: ArenaImage): void {
  const s = layout.mallocState;
  bytes.fill(0, at, at + s.size);
  put(bytes, at, s, 'next', address);
  put(bytes, at, s, 'attached_threads', 1);
  if (image.state === 'uninitialized') return;
  for (let i = 1; i < 128; i++) {
    put(bytes, at, s, 'bins', binAddress(layout, address, i), 2 * i - 2);
    put(bytes, at, s, 'bins', binAddress(layout, address, i), 2 * i - 1);
  }
  put(bytes, at, s, 'top', initialTop(layout, address));
  if (image.state === 'no-memory') return;
  const { start, end } = image.heap!;
  const system = end - start;
  put(bytes, at, s, 'top', end - 0x1000n);
  put(bytes, at, s, 'system_mem', system);
  put(bytes, at, s, 'max_system_mem', system);
  put(bytes, at, s, 'last_remainder', start + 0x2a0n);
  // One chunk in fastbin 2 (size 0x40; not from 2.43, which has none), one in small bin 5 (marked in binmap), one unsorted.
  if (layout.fastbins) {
    put(bytes, at, s, 'fastbinsY', start + 0x300n, 2);
    put(bytes, at, s, 'have_fastchunks', 1);
  }
  put(bytes, at, s, 'bins', start + 0x400n, 2 * 5 - 2);
  put(bytes, at, s, 'bins', start + 0x400n, 2 * 5 - 1);
  put(bytes, at, s, 'binmap', 1 << 5, 0);
  put(bytes, at, s, 'bins', start + 0x500n, 0);
  put(bytes, at, s, 'bins', start + 0x500n, 1);
}

/** Writes mp_ at `bytes[at]` with glibc's defaults (malloc.c's initializer) and `sbrkBase`. */
export function writeMallocPar(bytes: Buffer, at: number, layout: GlibcLayout, sbrkBase: bigint): void {
  const s = layout.mallocPar;
  bytes.fill(0, at, at + s.size);
  put(bytes, at, s, 'trim_threshold', 128 * 1024);
  put(bytes, at, s, 'top_pad', 128 * 1024);
  put(bytes, at, s, 'mmap_threshold', 128 * 1024);
  put(bytes, at, s, 'arena_test', 8);
  put(bytes, at, s, 'n_mmaps_max', 65536);
  put(bytes, at, s, 'sbrk_base', sbrkBase);
  put(bytes, at, s, s.fields.some((f) => f.name === 'tcache_bins') ? 'tcache_bins' : 'tcache_small_bins', 64);
  put(bytes, at, s, 'tcache_max_bytes', 1032);
  put(bytes, at, s, 'tcache_count', 7);
}

/** Writes global_max_fast, as wide as the release has it (a byte where it has none: just data). */
export function writeGlobalMaxFast(bytes: Buffer, at: number, layout: GlibcLayout, value: number): void {
  if (layout.globalMaxFast === 'size_t') bytes.writeBigUInt64LE(BigInt(value), at);
  else bytes.writeUInt8(value, at);
}
