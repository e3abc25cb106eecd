// The glibc version of another process, from the libc file it maps: the
// banner every glibc carries in .rodata ("GNU C Library (Debian GLIBC
// 2.36-9) stable release version 2.36."), read from that very file (same
// device and inode), not from the libc this process runs on.
import { HeapscopeError } from '../errors';
import { LibcFile } from '../allocator/libc-file';
import { fileFacts, withFileBytes } from '../file-bytes';
import { own } from '../validate';

const BANNER_START = 'GNU C Library ';
const BANNER = /^GNU C Library [^\n]*?release version (\d+\.\d+(?:\.\d+)?)/;
/** The most of a banner read after its start: Debian 12's is 73 bytes. */
const BANNER_MOST = 512;

/** The version in the first banner of `bytes` (a libc file), or undefined. */
function bannerVersion(bytes: Buffer): string | undefined {
  for (let at = bytes.indexOf(BANNER_START); at >= 0; at = bytes.indexOf(BANNER_START, at + 1)) {
    const match = BANNER.exec(bytes.toString('latin1', at, at + BANNER_MOST));
    if (match !== null) return match[1];
  }
  return undefined;
}

/** The version in `libc`'s banner, e.g. `2.36`. Looks through the target's root first (containers). */
export function libcVersionOf(pid: number, libc: LibcFile): string {
  const tried: string[] = [];
  for (const file of [`/proc/${pid}/root${libc.path}`, libc.path]) {
    let version: string | undefined;
    try {
      const { inode } = fileFacts(file);
      if (inode !== libc.inode) {
        tried.push(`${file} is another file now (inode ${inode}, the mapped one is ${libc.inode})`);
        continue;
      }
      // Read into memory the addon maps (withFileBytes): 1.9 MB from malloc raised this process's mmap threshold.
      version = withFileBytes(file, bannerVersion, own(libc, 'size'));
    } catch (error) {
      tried.push(`${file}: ${(error as Error).message}`);
      continue;
    }
    if (version !== undefined) return version;
    tried.push(`${file} holds no "GNU C Library … release version" banner`);
  }
  throw new HeapscopeError('ERR_UNKNOWN_GLIBC_LAYOUT', `the glibc version of process ${pid} cannot be read from its libc: ${tried.join('; ')}`);
}
