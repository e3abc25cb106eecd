// The glibc version of another process, from the banner every glibc carries
// in .rodata ("GNU C Library (Debian GLIBC 2.36-9) stable release version
// 2.36."), and its libc's build ID, read in the process's own memory: its
// libc's read-only mappings are that very file's bytes, wherever the file is
// now (an upgrade deletes or replaces it under a running process; a
// container's is another file out here), and whoever may read the process
// may read them.
import { HeapscopeError } from '../errors';
import { hex } from '../format';
import { mappedBytes, releaseBytes } from '../fresh-memory';
import { gnuBuildId } from '../allocator/build-id';
import { MemoryRegion } from '../maps';
import { readRanges } from './read-ranges';

const BANNER_START = 'GNU C Library ';
const BANNER = /^GNU C Library [^\n]*?release version (\d+\.\d+(?:\.\d+)?)/;
/** The most of a banner read after its start: Debian 12's is 73 bytes. */
const BANNER_MOST = 512;

/** The version in the first banner of `bytes`, or undefined. */
function bannerVersion(bytes: Buffer): string | undefined {
  for (let at = bytes.indexOf(BANNER_START); at >= 0; at = bytes.indexOf(BANNER_START, at + 1)) {
    const match = BANNER.exec(bytes.toString('latin1', at, at + BANNER_MOST));
    if (match !== null) return match[1];
  }
  return undefined;
}

/** The mapped libc file, as its map names it. */
export type MappedLibc = Pick<MemoryRegion, 'path' | 'dev' | 'inode'>;

/**
 * The version in the banner of `libc` as process `pid` maps it, e.g.
 * `2.36`, and its build ID where its first mapping holds one. Its
 * read-only, non-executable mappings of that file (`regions`, the
 * process's map: about 500 KB for Debian 12's libc) are read in one call
 * into memory the addon maps (from malloc, it would raise this process's
 * mmap threshold); only where none holds the banner are its executable
 * ones read too (1.4 MB more: reading makes a mapping's pages resident in
 * the target).
 */
export function libcIdentityOf(pid: number, regions: readonly MemoryRegion[], libc: MappedLibc): { version: string; buildId?: string } {
  const mapped = regions.filter((r) => r.path === libc.path && r.inode === libc.inode && r.dev === libc.dev && !r.writable && r.readable);
  if (mapped.length === 0) {
    throw new HeapscopeError('ERR_UNKNOWN_GLIBC_LAYOUT', `the glibc version of process ${pid} cannot be read: it maps no read-only part of ${libc.path}`);
  }
  let buildId: string | undefined;
  const failed: string[] = [];
  // .rodata has a segment of its own where the linker separates code (binutils 2.31 on); before, it shares the text's (glibc 2.27 of Ubuntu 18.04).
  for (const part of [mapped.filter((r) => !r.executable), mapped.filter((r) => r.executable)]) {
    if (part.length === 0) continue;
    const into = mappedBytes(part.reduce((n, r) => n + r.size, 0), false);
    try {
      const reads = readRanges(pid, part.map((r) => ({ address: r.start, length: r.end - r.start })), into);
      const head = reads[part.findIndex((r) => r.offset === 0)];
      if (head !== undefined) buildId = gnuBuildId(head.bytes);
      for (const read of reads) {
        const version = bannerVersion(Buffer.from(read.bytes.buffer, read.bytes.byteOffset, read.bytes.length));
        if (version !== undefined) return { version, ...(buildId === undefined ? {} : { buildId }) };
      }
      reads.forEach((read, i) => { if (read.errno !== 0) failed.push(`${hex(part[i].start)}: errno ${read.errno}`); });
    } finally {
      releaseBytes([into]);
    }
  }
  throw new HeapscopeError(
    'ERR_UNKNOWN_GLIBC_LAYOUT',
    `the glibc version of process ${pid} cannot be read: no "GNU C Library … release version" banner in the read-only mappings of ${libc.path}` +
      (failed.length === 0 ? '' : ` (some could not be read: ${failed.join(', ')})`),
  );
}
