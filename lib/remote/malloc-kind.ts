// Whether a process's malloc is glibc's, judged from its map alone: another
// allocator's library mapped (preloaded or linked), musl's loader, or no
// libc.so.6 at all (a static binary) each mean glibc's state says nothing.
import { HeapscopeError } from '../errors';
import { MemoryRegion } from '../maps';
import { libcDataRegions } from '../allocator/libc-data';

const OTHER_ALLOCATORS: [RegExp, string][] = [
  [/\/libjemalloc[^/]*\.so/, 'jemalloc'],
  [/\/libtcmalloc[^/]*\.so/, 'tcmalloc'],
  [/\/libmimalloc[^/]*\.so/, 'mimalloc'],
  [/\/libhoard[^/]*\.so/, 'Hoard'],
  [/\/libscudo[^/]*\.so/, 'Scudo'],
  [/\/ld-musl-[^/]*\.so/, 'musl libc'],
];

/** Throws ERR_NOT_GLIBC_MALLOC, saying what was found instead, unless glibc's malloc serves `pid`. */
export function requireGlibcMalloc(pid: number, exe: string, regions: readonly MemoryRegion[]): void {
  const paths = [...new Set(regions.map((r) => r.path).filter((p) => p.startsWith('/')))];
  for (const [pattern, name] of OTHER_ALLOCATORS) {
    const file = paths.find((p) => pattern.test(p));
    if (file !== undefined) {
      throw new HeapscopeError('ERR_NOT_GLIBC_MALLOC', `process ${pid} (${exe}) does not use glibc's malloc: ${file} is mapped (${name})`);
    }
  }
  if (libcDataRegions(regions).length === 0) {
    throw new HeapscopeError('ERR_NOT_GLIBC_MALLOC',
      `process ${pid} (${exe}) does not use glibc's malloc: no libc.so.6 is mapped (a static binary, such as a Go program, or another libc)`);
  }
}
