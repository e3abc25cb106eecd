// Which libc file a process has mapped, as a key that facts about the file
// (such as where global_max_fast sits relative to main_arena) can be cached
// under: any process mapping the same file has the same offsets.
import os from 'node:os';
import { fileFacts } from '../file-bytes';
import { MemoryRegion } from '../maps';
import { libcDataRegions } from './libc-data';
import { own } from '../validate';

const { ENOENT } = os.constants.errno;

export interface LibcFile {
  path: string;
  /** Device and inode of the mapping, as /proc/PID/maps gives them. */
  dev: string;
  inode: number;
  /** The file's size and modification time, when it can still be stat'ed as that inode. */
  size?: number;
  mtimeMs?: number;
  /** Why the path could not be stat'ed, where it was not for being gone (ENOENT). */
  statFailed?: string;
  /** All of the above in one string. */
  key: string;
}

/** The libc file behind `regions` (a process's map), or undefined when it maps no libc. */
export function libcFileOf(regions: readonly MemoryRegion[]): LibcFile | undefined {
  const data = libcDataRegions(regions)[0];
  if (data === undefined) return undefined;
  let same: { size: number; mtimeMs: number } | undefined;
  let statFailed: string | undefined;
  try {
    const stat = fileFacts(data.path);
    // A replaced file (an upgrade) has another inode: its stat says nothing about the mapped one.
    if (stat.inode === data.inode) same = { size: stat.size, mtimeMs: stat.mtimeMs };
  } catch (error) {
    // Deleted since it was mapped: dev and inode still name it. Anything else is said.
    const e = error as { errno?: unknown; message?: unknown };
    if (own(e, 'errno') !== ENOENT) statFailed = String(own(e, 'message') ?? error);
  }
  return {
    path: data.path, dev: data.dev, inode: data.inode, ...same, ...(statFailed === undefined ? {} : { statFailed }),
    key: [data.path, data.dev, data.inode, same?.size ?? '-', same?.mtimeMs ?? '-'].join(' '),
  };
}
