// /proc/PID/maps parsed here, without heapscope's parser: an oracle for
// what heapscope's map and decode say of another process.
import fs from 'node:fs';

export interface ProcMapLine { start: bigint; end: bigint; perms: string; offset: bigint; inode: number; path: string }

export function procMaps(pid: number): ProcMapLine[] {
  return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n').map((line) => {
    const [range, perms, offset, , inode, ...rest] = line.split(/ +/);
    const [start, end] = range.split('-');
    return { start: BigInt(`0x${start}`), end: BigInt(`0x${end}`), perms, offset: BigInt(`0x${offset}`), inode: Number(inode), path: rest.join(' ') };
  });
}
