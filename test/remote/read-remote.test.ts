// The native copy of another process's memory (readRemote): many ranges in
// one call, each with its own errno and length, a partial read reported as
// such, and the process-wide failures coded.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { binding } from '../../lib/binding';
import { fromNative } from '../../lib/errors';
import { attach, malloc, maps, pageSize, runPlan } from '../../lib/index';
import { releaseBytes } from '../../lib/fresh-memory';
import { readPacked, readRanges } from '../../lib/remote/read-ranges';
import { requireGlibcMalloc } from '../../lib/remote/malloc-kind';
import { libcIdentityOf } from '../../lib/remote/libc-identity';
import { libcFileOf } from '../../lib/allocator/libc-file';
import { parseMaps } from '../../lib/maps';
import { glibcVersion } from '../../lib/stats';
import { readelfBuildId } from '../helpers/readelf';

const EFAULT = 14;

function codeOf(call: () => unknown): unknown {
  try {
    call();
    return undefined;
  } catch (error) {
    return (fromNative(error) as { code?: string }).code;
  }
}

describe('readRemote', () => {
  it('copies several ranges in one call; an unmapped one gets EFAULT, one running off its mapping a partial length', () => {
    const a = malloc(64);
    a.write(0, Buffer.from('heapscope remote read'));
    // The last page of a mapping with nothing mapped right after it.
    const regions = maps();
    const lonely = regions.find((r, i) => r.perms.startsWith('r') && (regions[i + 1] === undefined || regions[i + 1].start > r.end) && r.kind !== 'vsyscall')!;
    const page = BigInt(pageSize());
    const reads = readRanges(process.pid, [
      { address: a.address, length: 21n },
      { address: 0x1000n, length: 8n },
      { address: lonely.end - page, length: page * 2n },
      { address: a.address, length: 0n },
    ]);
    expect(Buffer.from(reads[0].bytes).toString()).toBe('heapscope remote read');
    expect(reads[0].errno).toBe(0);
    expect(reads[1]).toEqual({ bytes: new Uint8Array(0), errno: EFAULT });
    expect(reads[2].errno).toBe(EFAULT);
    expect(reads[2].bytes.length).toBe(Number(page));
    expect(reads[3]).toEqual({ bytes: new Uint8Array(0), errno: 0 });
    a.free();
  });

  it('copies a long range into memory of its own that releaseCopies gives back', () => {
    const size = 256 << 10;
    const a = malloc(size);
    try {
      a.fill(0x5a);
      const [long, short] = readRanges(process.pid, [{ address: a.address, length: BigInt(size) }, { address: a.address, length: 21n }]);
      expect([long.errno, long.bytes.length, long.bytes[0], long.bytes[size - 1]]).toEqual([0, size, 0x5a, 0x5a]);
      // Given back, the copy reads as empty; a short range is calloc's, left to Node.
      expect(binding.releaseCopies([long.bytes, short.bytes])).toBe(1);
      expect(long.bytes.length).toBe(0);
      expect(short.bytes.length).toBe(21);
      expect(binding.releaseCopies([long.bytes])).toBe(0);
    } finally {
      a.free();
    }
  });

  it('copies out what a long range cut short read, and gives its own memory back then', ({ skip }) => {
    // A mapping no brk or mmap of ours can extend while it is read: not writable, nothing mapped right after it.
    const regions = maps();
    const page = BigInt(pageSize());
    const lonely = regions.find((r, i) => !r.writable && r.readable && r.size >= 32 * Number(page) && (regions[i + 1] === undefined || regions[i + 1].start > r.end) && r.kind !== 'vsyscall');
    if (lonely === undefined) skip('no read-only mapping of 32 pages or more with nothing mapped right after it');
    const [cut] = readRanges(process.pid, [{ address: lonely!.end - 16n * page, length: 64n * page }]);
    expect([cut.errno, cut.bytes.length]).toEqual([EFAULT, 16 * Number(page)]);
    expect(Buffer.compare(Buffer.from(cut.bytes), binding.readMemory(lonely!.end - 16n * page, 16n * page))).toBe(0);
    // What was read is a copy of its own (the long range's memory went back in the call): nothing to give back.
    expect(binding.releaseCopies([cut.bytes])).toBe(0);
    expect(cut.bytes.length).toBe(16 * Number(page));
  });

  it('reads ranges one after another into an array it is given, and refuses one too short for them', () => {
    const a = malloc(64);
    a.write(0, Buffer.from('0123456789abcdef'));
    const into = new Uint8Array(64).fill(0xee);
    const reads = readRanges(process.pid, [{ address: a.address + 10n, length: 6n }, { address: 0x1000n, length: 8n }, { address: a.address, length: 4n }], into);
    expect(Buffer.from(reads[0].bytes).toString()).toBe('abcdef');
    expect(reads[1]).toEqual({ bytes: new Uint8Array(0), errno: EFAULT });
    // The third range's place comes after the second's 8 bytes, read or not.
    expect(Buffer.from(reads[2].bytes).toString()).toBe('0123');
    expect(reads[2].bytes.byteOffset).toBe(14);
    expect(into[18]).toBe(0xee);
    expect(codeOf(() => binding.readRemote(process.pid, new BigUint64Array([a.address, 8n, a.address, 8n]), undefined, new Uint8Array(15)))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => binding.readRemote(process.pid, new BigUint64Array([a.address, 8n]), undefined, [new Uint8Array(8)] as never))).toBe('ERR_INVALID_ARG_TYPE');
    a.free();
  });

  it('reads more ranges than one native call takes (1024) in calls of that many, in order, into an array too', () => {
    const a = malloc(64);
    a.write(0, Buffer.from('0123456789abcdef'));
    // 2,500 ranges: byte i % 16 of the block at each, and every 700th unmapped.
    const ranges = Array.from({ length: 2500 }, (_, i) => ({ address: i % 700 === 699 ? 0x1000n : a.address + BigInt(i % 16), length: 1n }));
    const into = new Uint8Array(ranges.length).fill(0xee);
    for (const reads of [readRanges(process.pid, ranges), readRanges(process.pid, ranges, into)]) {
      expect(reads).toHaveLength(ranges.length);
      expect(reads.map((r, i) => (i % 700 === 699 ? r.errno === EFAULT && r.bytes.length === 0 : r.errno === 0 && String.fromCharCode(r.bytes[0]) === '0123456789abcdef'[i % 16])))
        .toEqual(ranges.map(() => true));
    }
    // Into the array, each range at its own place: the unmapped ones' bytes left as they were.
    expect([...into.subarray(1024, 1030)].map((c) => String.fromCharCode(c)).join('')).toBe('0123456789abcdef'.slice(0, 6));
    expect(into[699]).toBe(0xee);
    expect(into[2099]).toBe(0xee);
    a.free();
  });

  it('in its packed form, writes each range\'s errno into the array it is given and returns nothing', async () => {
    const a = malloc(64);
    a.write(0, Buffer.from('0123456789abcdef'));
    const regions = maps();
    const lonely = regions.find((r, i) => r.perms.startsWith('r') && (regions[i + 1] === undefined || regions[i + 1].start > r.end) && r.kind !== 'vsyscall')!;
    const page = BigInt(pageSize());
    const into = new Uint8Array(3 * Number(page)).fill(0xee);
    const errnos = new Int32Array(4).fill(-1);
    const words = new BigUint64Array([a.address + 10n, 6n, 0x1000n, 8n, lonely.end - page, page * 2n, a.address, 4n]);
    expect(readPacked(process.pid, words, into)).toEqual(new Int32Array([0, EFAULT, EFAULT, 0]));
    expect(binding.readRemote(process.pid, words, undefined, into, errnos)).toBeUndefined();
    expect([...errnos]).toEqual([0, EFAULT, EFAULT, 0]);
    expect(Buffer.from(into.subarray(0, 6)).toString()).toBe('abcdef');
    // Each range's place follows the one before's whole length, read or not.
    expect(Buffer.from(into.subarray(14 + 2 * Number(page), 18 + 2 * Number(page))).toString()).toBe('0123');
    expect(codeOf(() => binding.readRemote(process.pid, words, undefined, into, new Int32Array(3)))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => binding.readRemote(process.pid, words, undefined, into, new Uint32Array(4) as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => binding.readRemote(process.pid, words, new Uint8Array(4) as never, into, errnos))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => binding.readRemote(process.pid, words, undefined, undefined as never, errnos))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => binding.readRemote(process.pid, words, undefined, new Uint8Array(20), errnos))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => binding.readRemote(process.pid, new BigUint64Array([(1n << 64n) - 4n, 8n]), undefined, into, new Int32Array(1)))).toBe('ERR_OUT_OF_RANGE');
    a.free();
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.on('exit', resolve));
    expect(codeOf(() => binding.readRemote(child.pid!, new BigUint64Array([0x1000n, 8n]), undefined, into, new Int32Array(1)))).toBe('ERR_PROCESS_EXITED');
  });

  it('copies a range over 1 GiB (a [heap] can be that big); its untouched pages are left alone here and there', () => {
    // An mmapped chunk of 1.5 GiB, written on its first and last pages only.
    const size = 1.5 * 2 ** 30;
    const big = malloc(size);
    try {
      big.write(0, Buffer.from('first page'));
      big.write(size - 9, Buffer.from('last page'));
      const rssBefore = process.memoryUsage().rss;
      const [read] = readRanges(process.pid, [{ address: big.address, length: BigInt(size), anonymous: true }]);
      expect(read.errno).toBe(0);
      expect(read.bytes.length).toBe(size);
      expect(Buffer.from(read.bytes.subarray(0, 10)).toString()).toBe('first page');
      expect(Buffer.from(read.bytes.subarray(size - 9)).toString()).toBe('last page');
      // Every page but the chunk's two written ones (its header's page is the first) was never touched: not read, zero in the copy.
      expect(read.untouchedPages).toBe(size / pageSize() - 1);
      expect(read.bytes[size / 2]).toBe(0);
      // Neither copy nor chunk was made resident: far less than the 1.5 GiB came in.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(2 ** 28);
    } finally {
      big.free();
    }
  });

  it('copies a plain range longer than one process_vm_readv copies (2 GiB − 4 KiB) whole, in readRemote and in a plan', () => {
    // An mmapped chunk just over 2 GiB, written on a few pages around the cap; the rest reads as zeros.
    const size = 2 ** 31 + 2 ** 16;
    const cap = 2 ** 31 - 4096;
    const marks = [[0, 'first page'], [cap - 16, 'before the cap'], [cap + 16, 'after the cap'], [size - 8, 'the end!']] as const;
    const big = malloc(size);
    try {
      for (const [at, text] of marks) big.write(at, Buffer.from(text));
      // One copy at a time, each given back before the next: 2 GiB of memory each.
      const copies = [
        () => {
          const [read] = readRanges(process.pid, [{ address: big.address, length: BigInt(size) }]);
          return { ok: read.errno === 0, bytes: read.bytes };
        },
        () => {
          const [step] = runPlan([{ op: 'read', address: big.address, length: size }]).steps;
          return { ok: step.status === 'ok', bytes: step.bytes ?? new Uint8Array(0) };
        },
      ];
      for (const copy of copies) {
        const { ok, bytes } = copy();
        try {
          expect(bytes.length).toBe(size);
          expect(ok).toBe(true);
          for (const [at, text] of marks) expect(Buffer.from(bytes.subarray(at, at + text.length)).toString()).toBe(text);
          expect(bytes[cap + 2048]).toBe(0);
        } finally {
          releaseBytes([bytes]);
        }
      }
    } finally {
      big.free();
    }
  });

  it('a process that is gone: ERR_PROCESS_EXITED; bad arguments are coded', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => child.on('exit', resolve));
    expect(codeOf(() => binding.readRemote(child.pid!, new BigUint64Array([0x1000n, 8n])))).toBe('ERR_PROCESS_EXITED');
    expect(codeOf(() => binding.readRemote(0, new BigUint64Array(0)))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => binding.readRemote(1.5, new BigUint64Array(0)))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => binding.readRemote(process.pid, new BigUint64Array(3)))).toBe('ERR_OUT_OF_RANGE');
    // At most 4 GiB in all, however split (a snapshot copies a [heap] twice, so up to 2 GiB of it).
    expect(codeOf(() => binding.readRemote(process.pid, new BigUint64Array([0n, (1n << 32n) + 1n])))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => binding.readRemote(process.pid, new BigUint64Array([0x1000n, 3n << 30n, 0x1000n, 2n << 30n])))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => binding.readRemote(process.pid, new BigUint64Array([(1n << 64n) - 4n, 8n])))).toBe('ERR_OUT_OF_RANGE');
    expect(codeOf(() => binding.readRemote(process.pid, new Uint8Array(2) as never))).toBe('ERR_INVALID_ARG_TYPE');
    expect(codeOf(() => (binding.readRemote as (...a: unknown[]) => unknown)(process.pid))).toBe('ERR_INVALID_ARG_TYPE');
  });
});

describe('what attach() reads from a map and a libc file', () => {
  const line = (start: number, path: string, perms = 'r-xp') => `${start.toString(16)}-${(start + 0x1000).toString(16)} ${perms} 00000000 fe:00 ${start} ${path}`;
  const refused = (text: string) => {
    try {
      requireGlibcMalloc(1, 'x', parseMaps(`${text}\n`));
      return undefined;
    } catch (error) {
      return `${(error as { code: string }).code}: ${(error as Error).message}`;
    }
  };

  it('names the allocator found instead of glibc\'s', () => {
    const libc = [line(0x10000, '/usr/lib/x86_64-linux-gnu/libc.so.6'), line(0x11000, '/usr/lib/x86_64-linux-gnu/libc.so.6', 'rw-p')];
    expect(refused(libc.join('\n'))).toBeUndefined();
    expect(refused([line(0x1000, '/usr/lib/libtcmalloc_minimal.so.4'), ...libc].join('\n'))).toMatch(/^ERR_NOT_GLIBC_MALLOC: .*libtcmalloc_minimal\.so\.4 is mapped \(tcmalloc\)/);
    expect(refused([line(0x1000, '/usr/lib/libmimalloc.so.2'), ...libc].join('\n'))).toMatch(/mimalloc/);
    expect(refused(line(0x1000, '/lib/ld-musl-x86_64.so.1'))).toMatch(/^ERR_NOT_GLIBC_MALLOC: .*musl/);
    expect(refused(line(0x1000, '/usr/local/bin/static-go-program'))).toMatch(/^ERR_NOT_GLIBC_MALLOC: .*no libc\.so\.6 is mapped/);
  });

  it("reads the glibc version from the banner in the process's own mappings of its libc, and its build ID: ours give what gnu_get_libc_version and readelf say", () => {
    const regions = maps();
    const libc = libcFileOf(regions)!;
    const identity = libcIdentityOf(process.pid, regions, libc);
    expect(identity.version).toBe(glibcVersion());
    expect(identity.buildId).toBe(libc.buildId);
    const readelf = readelfBuildId(libc.path);
    if (typeof readelf === 'string') expect(identity.buildId).toBe(readelf);
    expect(attach(process.pid).glibc).toBe(glibcVersion());
    // Another inode under the same path is another file: this process maps none of it.
    expect(() => libcIdentityOf(process.pid, regions, { ...libc, inode: libc.inode + 1 })).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_GLIBC_LAYOUT', message: expect.stringMatching(/maps no read-only part of /) }));
    // Its first read-only mapping alone (headers and symbols; .rodata comes later): read, and no banner found in it.
    const first = regions.filter((r) => r.path === libc.path && r.perms === 'r--p').slice(0, 1);
    expect(() => libcIdentityOf(process.pid, first, libc)).toThrow(expect.objectContaining({ code: 'ERR_UNKNOWN_GLIBC_LAYOUT', message: expect.stringMatching(/no "GNU C Library … release version" banner/) }));
  });

  it('the attached object refuses bad options and snapshots it did not take, with codes', () => {
    const target = attach(process.pid);
    expect(() => target.snapshot({ attempts: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => target.snapshot({ attempts: 101 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    const other = attach(process.pid).snapshot({ attempts: 1 });
    for (const call of ['arenas', 'bins', 'tcaches', 'chunkPlaces', 'allocatorTotals', 'mallocParams'] as const) {
      expect(() => target[call](other)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
      expect(() => target[call]({} as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
  });
});
