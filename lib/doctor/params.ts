// The parameters in force (mp_ as read now) beside mp_ as the libc file
// initialises it: the bytes of its .data where mp_ sits, read from the file
// the process maps (same device and inode). That is glibc's own
// DEFAULT_MMAP_THRESHOLD, DEFAULT_TRIM_THRESHOLD and DEFAULT_TOP_PAD as
// compiled, not numbers written down here; settings made through
// GLIBC_TUNABLES, MALLOC_*_ or mallopt show as differences from it.
import fs from 'node:fs';
import { decodeMallocPar, MallocPar } from '../allocator/decode';
import type { MallocParams } from '../allocator/params';
import type { GlibcLayout } from '../allocator/layouts';
import type { LibcFile } from '../allocator/libc-file';
import type { MemoryRegion } from '../maps';
import { fileFacts } from '../file-bytes';
import { hex } from '../format';
import { own } from '../validate';
import type { ParamsInForce } from './types';

/** mp_ as the libc file initialises it, or why it cannot be read. */
export function initialParams(
  par: MallocPar, layout: GlibcLayout, libc: LibcFile, regions: readonly MemoryRegion[],
): { initial: MallocPar } | { reason: string } {
  const size = layout.mallocPar.size;
  const region = regions.find((r) => r.path === libc.path && r.inode === libc.inode && r.start <= par.address && par.address + BigInt(size) <= r.end);
  if (region === undefined) return { reason: `mp_ at ${hex(par.address)} is in no file mapping of ${libc.path}` };
  // Own fields only: a LibcFile without them must not read Object.prototype's.
  const file = own(libc, 'file');
  const fileSize = own(libc, 'size');
  if (file === undefined || fileSize === undefined) return { reason: `no name opens the libc file the process maps: ${own(libc, 'unreachable') ?? 'none was tried'}` };
  const offset = region.offset + Number(par.address - region.start);
  if (offset + size > fileSize) return { reason: `mp_ lies past the end of ${libc.path} (in its .bss)` };
  const bytes = Buffer.alloc(size);
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    if (fileFacts(fd).inode !== libc.inode) return { reason: `${file} is no longer the file the process maps` };
    fs.readSync(fd, bytes, 0, size, offset);
  } catch (error) {
    return { reason: `${file} cannot be read: ${(error as Error).message}` };
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  const initial = decodeMallocPar(bytes, 0, layout, par.address);
  if (initial.mmapThreshold === 0n || initial.trimThreshold === 0n) return { reason: `the bytes of ${libc.path} at mp_'s offset are no initialised mp_ (mmap_threshold ${initial.mmapThreshold})` };
  return { initial };
}

/** The parameters in force, with the initial ones when read, and the in-use chunks the initial threshold would have mapped. */
export function paramsInForce(
  params: MallocParams, layout: GlibcLayout, initial: { initial: MallocPar } | { reason: string }, inUseAtLeast: (min: number) => { count: number; bytes: number },
): ParamsInForce {
  const par = params.values;
  const huge = par.hpPagesize ?? 0n;
  const mapped = params.mainArenaMapped;
  const first = 'initial' in initial ? initial.initial : undefined;
  const large = first === undefined ? { count: 0, bytes: 0 } : inUseAtLeast(Number(first.mmapThreshold));
  return {
    mmapThreshold: Number(par.mmapThreshold),
    trimThreshold: Number(par.trimThreshold),
    topPad: Number(par.topPad),
    arenaMax: Number(par.arenaMax),
    arenaTest: Number(par.arenaTest),
    nMmapsMax: par.nMmapsMax,
    noDynThreshold: par.noDynThreshold !== 0,
    ...(first === undefined
      ? { initialReason: (initial as { reason: string }).reason }
      : { initial: { mmapThreshold: Number(first.mmapThreshold), trimThreshold: Number(first.trimThreshold), topPad: Number(first.topPad), arenaMax: Number(first.arenaMax) } }),
    raised: first !== undefined && par.noDynThreshold === 0 && par.mmapThreshold > first.mmapThreshold,
    largeInHeap: large,
    ...(huge === 0n ? {} : {
      hugePages: { pageSize: Number(huge), mainArenaMapped: mapped, threshold: mapped && layout.hugePagesThreshold && par.noDynThreshold !== 0 && par.mmapThreshold === huge },
    }),
  };
}
