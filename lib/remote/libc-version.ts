// The glibc version of another process, from the libc file it maps: the
// banner every glibc carries in .rodata ("GNU C Library (Debian GLIBC
// 2.36-9) stable release version 2.36."), read from that very file (same
// device and inode), not from the libc this process runs on.
import fs from 'node:fs';
import { HeapscopeError } from '../errors';
import { LibcFile } from '../allocator/libc-file';

const BANNER = /GNU C Library [^\n]*?release version (\d+\.\d+(?:\.\d+)?)/;

/** The version in `libc`'s banner, e.g. `2.36`. Looks through the target's root first (containers). */
export function libcVersionOf(pid: number, libc: LibcFile): string {
  const tried: string[] = [];
  for (const file of [`/proc/${pid}/root${libc.path}`, libc.path]) {
    let bytes: Buffer;
    try {
      if (fs.statSync(file).ino !== libc.inode) {
        tried.push(`${file} is another file now (inode ${fs.statSync(file).ino}, the mapped one is ${libc.inode})`);
        continue;
      }
      bytes = fs.readFileSync(file);
    } catch (error) {
      tried.push(`${file}: ${(error as Error).message}`);
      continue;
    }
    const match = BANNER.exec(bytes.toString('latin1'));
    if (match !== null) return match[1];
    tried.push(`${file} holds no "GNU C Library … release version" banner`);
  }
  throw new HeapscopeError('ERR_UNKNOWN_GLIBC_LAYOUT', `the glibc version of process ${pid} cannot be read from its libc: ${tried.join('; ')}`);
}
