// Which mappings of a process hold libc's writable data, from its map alone
// (this process's maps() or another's /proc/PID/maps through parseMaps).
import { MemoryRegion } from '../maps';

/** glibc's shared object: libc.so.6, or libc-2.NN.so before 2.34 (where libc.so.6 is a link to it). */
const LIBC = /\/libc(?:\.so\.6|-2\.\d+\.so)$/;

/**
 * libc's file-backed rw-p mapping (.data and the first part of .bss) and the
 * anonymous rw-p mapping right after it, if any (the rest of .bss), in
 * address order; empty when no libc is mapped.
 */
export function libcDataRegions(regions: readonly MemoryRegion[]): MemoryRegion[] {
  const at = regions.findIndex((r) => LIBC.test(r.path) && r.perms === 'rw-p');
  if (at < 0) return [];
  const data = regions[at];
  const after = regions[at + 1];
  return after !== undefined && after.start === data.end && after.inode === 0 && after.path === '' && after.perms === 'rw-p'
    ? [data, after] : [data];
}
