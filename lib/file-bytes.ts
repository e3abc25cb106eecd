// A file's facts (fileFacts) and its whole bytes read into memory the addon
// maps, for a caller that reads them once (withFileBytes). fs.readFileSync
// took a buffer from malloc, which glibc mapped on its own from 128 KiB on
// and, once V8 collected it, raised its mmap threshold to: heapscope's own
// read moved the parameter it reports (a node's smaps, 236 KiB; the 1.9 MB
// libc file another process maps, read for its banner, left this process's
// threshold at 1.84 MiB).
import fs from 'node:fs';
import { binding } from './binding';
import { native } from './errors';
import { mappedBytes, releaseBytes } from './fresh-memory';

/** What stat(2) says of a file. */
export interface FileFacts {
  inode: number;
  size: number;
  mtimeMs: number;
  directory: boolean;
}

/**
 * stat(2) of `file` (a path, or an open descriptor), through the addon:
 * Node builds its Stats by assigning each field, which throws at a
 * getter-only accessor on Object.prototype under that name (`size`, `dev`,
 * `ino`, …). Throws ERR_READ_FAILED with the errno (ENOENT: nothing there).
 */
export function fileFacts(file: string | number): FileFacts {
  const [inode, size, mtimeMs, directory] = native(() => binding.fileStat(file));
  return { inode, size, mtimeMs, directory: directory === 1 };
}

/** What a file whose size the kernel does not give (a /proc file) is read into first: a node's smaps is ~140 KB. */
const FIRST_READ = 256 << 10;

/**
 * `use` of `file`'s bytes, read whole into memory the addon maps, which is
 * given back once `use` returns: `use` keeps no view of them. `size`, the
 * file's size where the caller knows it, saves growing the memory as the
 * reads go. Throws what fs throws, or ERR_ALLOC_FAILED where no memory
 * could be mapped.
 */
export function withFileBytes<T>(file: string, use: (bytes: Buffer) => T, size = 0): T {
  let fd: number | undefined;
  let bytes: Uint8Array | undefined;
  try {
    fd = fs.openSync(file, 'r');
    // One more than the size, so that the end is met in the first read's room.
    bytes = mappedBytes(Math.max(FIRST_READ, size + 1), false);
    let length = 0;
    for (;;) {
      if (length === bytes.length) {
        const bigger = mappedBytes(2 * bytes.length, false);
        bigger.set(bytes);
        releaseBytes([bytes]);
        bytes = bigger;
      }
      const n = fs.readSync(fd, bytes, length, bytes.length - length, null);
      if (n === 0) return use(Buffer.from(bytes.buffer, bytes.byteOffset, length));
      length += n;
    }
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
    if (bytes !== undefined) releaseBytes([bytes]);
  }
}
