// Which libc file a process has mapped, as a key that facts about the file
// (such as where global_max_fast sits relative to main_arena) can be cached
// under: any process mapping the same build (its GNU build ID, where it has
// one; else the same file) has the same offsets. And a name
// that opens that very file, where one can: a long-running process maps a
// libc that an upgrade has since deleted (its map says "(deleted)") or
// replaced (its path names a new file), and a process in a container maps
// one whose path names another file (or none) out here.
import { HeapscopeError } from '../errors';
import { fileFacts } from '../file-bytes';
import { MemoryRegion } from '../maps';
import { readMemory } from '../memory';
import { gnuBuildId } from './build-id';
import { libcDataRegions } from './libc-data';
import { own } from '../validate';

export interface LibcFile {
  path: string;
  /** Device and inode of the mapping, as /proc/PID/maps gives them. */
  dev: string;
  inode: number;
  /** A name that opens the mapped file itself (same inode), with its size and modification time, where one was found. */
  file?: string;
  size?: number;
  mtimeMs?: number;
  /** Where no name opened the mapped file: each name tried, and what it was. */
  unreachable?: string;
  /** Its GNU build ID, read in the process's memory, where it has one. */
  buildId?: string;
  /** `build-id ID`, or without one path, dev, inode, size and mtime in one string. */
  key: string;
}

/** The most of a libc's first mapping read for its build ID: its ELF header, program headers and notes come first. */
const HEAD = 8192;

const ownBuildIds = new Map<string, string>();

/** The build ID of the libc this process maps (its mapping at file offset 0 is `first`), read until it is found once. */
function ownBuildId(first: MemoryRegion): string | undefined {
  const file = `${first.path} ${first.dev} ${first.inode}`;
  const known = ownBuildIds.get(file);
  if (known !== undefined) return known;
  let id: string | undefined;
  try {
    id = gnuBuildId(readMemory(first.start, Math.min(first.size, HEAD)));
  } catch (error) {
    if (!(error instanceof HeapscopeError)) throw error;
  }
  if (id !== undefined) ownBuildIds.set(file, id);
  return id;
}

/**
 * The libc file behind `regions` (the map of process `pid`, this process's
 * by default, whose build ID is read here; another's is `buildId`, read in
 * its memory), or undefined when it maps no libc. The names tried, in turn:
 * /proc/PID/map_files/START-END, the mapped file itself wherever it is
 * (opening it takes CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE); then its path,
 * seen from another process's root (/proc/PID/root: its mount namespace).
 * Each counts only when it is the mapped inode.
 */
export function libcFileOf(regions: readonly MemoryRegion[]): LibcFile | undefined;
export function libcFileOf(regions: readonly MemoryRegion[], pid: number, buildId: string | undefined): LibcFile | undefined;
export function libcFileOf(regions: readonly MemoryRegion[], pid?: number, buildId?: string): LibcFile | undefined {
  const data = libcDataRegions(regions)[0];
  if (data === undefined) return undefined;
  const proc = `/proc/${pid ?? 'self'}`;
  const names = [
    `${proc}/map_files/${data.start.toString(16)}-${data.end.toString(16)}`,
    pid === undefined ? data.path : `${proc}/root${data.path}`,
  ];
  const tried: string[] = data.deleted ? [`${data.path} was deleted since it was mapped (its map says so)`] : [];
  let found: { file: string; size: number; mtimeMs: number } | undefined;
  for (const file of names) {
    try {
      const stat = fileFacts(file);
      if (stat.inode === data.inode) {
        found = { file, size: stat.size, mtimeMs: stat.mtimeMs };
        break;
      }
      tried.push(`${file} is another file (inode ${stat.inode}, the mapped one is ${data.inode})`);
    } catch (error) {
      tried.push(String(own(error as { message?: unknown }, 'message') ?? error));
    }
  }
  const first = regions.find((r) => r.path === data.path && r.inode === data.inode && r.offset === 0);
  const id = pid === undefined ? (first === undefined ? undefined : ownBuildId(first)) : buildId;
  return {
    path: data.path, dev: data.dev, inode: data.inode, ...(found ?? { unreachable: tried.join('; ') }), ...(id === undefined ? {} : { buildId: id }),
    key: id !== undefined ? `build-id ${id}` : [data.path, data.dev, data.inode, found?.size ?? '-', found?.mtimeMs ?? '-'].join(' '),
  };
}
