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
 * `2.36`, and its build ID where its first mapping holds one: its
 * read-only mappings of that file (`regions`, the process's map) are read,
 * all in one call, into memory the addon maps (about 500 KB for Debian 12's
 * libc, 2 MB where code and data share a segment: from malloc, it would
 * raise this process's mmap threshold), and searched, the non-executable
 * ones first.
 */
export function libcIdentityOf(pid: number, regions: readonly MemoryRegion[], libc: MappedLibc): { version: string; buildId?: string } {
  const mapped = regions.filter((r) => r.path === libc.path && r.inode === libc.inode && r.dev === libc.dev && !r.writable && r.readable);
  // .rodata has a segment of its own where the linker separates code (binutils 2.31 on); before, it shares the text's (glibc 2.27 of Ubuntu 18.04).
  const readOnly = [...mapped.filter((r) => !r.executable), ...mapped.filter((r) => r.executable)];
  if (readOnly.length === 0) {
    throw new HeapscopeError('ERR_UNKNOWN_GLIBC_LAYOUT', `the glibc version of process ${pid} cannot be read: it maps no read-only part of ${libc.path}`);
  }
  const length = readOnly.reduce((n, r) => n + r.size, 0);
  const into = mappedBytes(length, false);
  try {
    const reads = readRanges(pid, readOnly.map((r) => ({ address: r.start, length: r.end - r.start })), into);
    const head = reads[readOnly.findIndex((r) => r.offset === 0)];
    const buildId = head === undefined ? undefined : gnuBuildId(head.bytes);
    for (const read of reads) {
      const version = bannerVersion(Buffer.from(read.bytes.buffer, read.bytes.byteOffset, read.bytes.length));
      if (version !== undefined) return { version, ...(buildId === undefined ? {} : { buildId }) };
    }
    const failed = reads.flatMap((read, i) => (read.errno === 0 ? [] : [`${hex(readOnly[i].start)}: errno ${read.errno}`]));
    throw new HeapscopeError(
      'ERR_UNKNOWN_GLIBC_LAYOUT',
      `the glibc version of process ${pid} cannot be read: no "GNU C Library … release version" banner in the read-only mappings of ${libc.path}` +
        (failed.length === 0 ? '' : ` (some could not be read: ${failed.join(', ')})`),
    );
  } finally {
    releaseBytes([into]);
  }
}
