// Which libc file a process has mapped, as a key that facts about the file
// (such as where global_max_fast sits relative to main_arena) can be cached
// under: any process mapping the same file has the same offsets.
import fs from 'node:fs';
import { MemoryRegion } from '../maps';
import { libcDataRegions } from './libc-data';

export interface LibcFile {
  path: string;
  /** Device and inode of the mapping, as /proc/PID/maps gives them. */
  dev: string;
  inode: number;
  /** The file's size and modification time, when it can still be stat'ed as that inode. */
  size?: number;
  mtimeMs?: number;
  /** All of the above in one string. */
  key: string;
}

/** The libc file behind `regions` (a process's map), or undefined when it maps no libc. */
export function libcFileOf(regions: readonly MemoryRegion[]): LibcFile | undefined {
  const data = libcDataRegions(regions)[0];
  if (data === undefined) return undefined;
  let same: { size: number; mtimeMs: number } | undefined;
  try {
    const stat = fs.statSync(data.path);
    // A replaced file (an upgrade) has another inode: its stat says nothing about the mapped one.
    if (stat.ino === data.inode) same = { size: stat.size, mtimeMs: stat.mtimeMs };
  } catch {
    // Deleted since it was mapped: dev and inode still name it.
  }
  return {
    path: data.path, dev: data.dev, inode: data.inode, ...same,
    key: [data.path, data.dev, data.inode, same?.size ?? '-', same?.mtimeMs ?? '-'].join(' '),
  };
}
