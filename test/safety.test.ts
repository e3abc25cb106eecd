// The safety contract: every misuse is a JS error with a stable code, and
// the process carries on (the test run itself would die otherwise).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { binding } from '../lib/binding';
import {
  alignedAlloc, Allocation, calloc, free, HeapscopeError, malloc, mallocTrim, mallocUsableSize, mallopt, MAX_READ, realloc,
} from '../lib/index';
import { readMemory } from '../lib/memory';
import { SYNC_CHILD } from './helpers/sync-child';
import { hostLibraries, nodeAgain } from './helpers/foreign-env';
import { HERE } from './helpers/glibc-here';

const code = (c: string) => expect.objectContaining({ code: c });

describe('safety contract', () => {
  it('double free is ERR_DOUBLE_FREE, by handle and by function', () => {
    const a = malloc(10);
    a.free();
    expect(() => a.free()).toThrow(code('ERR_DOUBLE_FREE'));
    expect(() => free(a)).toThrow(code('ERR_DOUBLE_FREE'));
    expect(() => a.free()).toThrow(HeapscopeError);
  });

  it('a freed address, or one heapscope never allocated, is ERR_UNKNOWN_POINTER', () => {
    const a = malloc(10);
    a.free();
    expect(() => free(a.address)).toThrow(code('ERR_UNKNOWN_POINTER'));
    const inside = malloc(64);
    expect(() => free(inside.address + 16n)).toThrow(code('ERR_UNKNOWN_POINTER'));
    expect(() => free(0x1234n)).toThrow(code('ERR_UNKNOWN_POINTER'));
    expect(() => realloc(0x1234n, 10)).toThrow(code('ERR_UNKNOWN_POINTER'));
    inside.free();
  });

  it('the raw binding refuses foreign pointers too, so glibc never sees one', () => {
    const buffer = Buffer.alloc(64);
    expect(() => binding.free(0x1000n)).toThrow(code('ERR_UNKNOWN_POINTER'));
    expect(() => binding.realloc(0x1000n, 10n)).toThrow(code('ERR_UNKNOWN_POINTER'));
    expect(() => binding.usableSize(BigInt(buffer.byteOffset) + 0x1000n)).toThrow(code('ERR_UNKNOWN_POINTER'));
    expect(() => binding.malloc(1n << 63n)).toThrow(code('ERR_OUT_OF_RANGE'));
  });

  it('the raw binding refuses them as numbers too: malloc, free and usableSize take a quick way only for a whole number it can act on', () => {
    // Called as JavaScript may call them, whatever the typings say.
    const raw = binding as unknown as Record<'malloc' | 'free' | 'usableSize', (...args: unknown[]) => number>;
    const p = binding.malloc(24);
    expect(typeof p).toBe('number');
    expect(raw.usableSize(p, 'ignored')).toBe(24);
    expect(() => binding.usableSize(p + 16)).toThrow(code('ERR_UNKNOWN_POINTER'));
    expect(() => binding.free(p + 16)).toThrow(code('ERR_UNKNOWN_POINTER'));
    expect(() => binding.free(0x1000)).toThrow(code('ERR_UNKNOWN_POINTER'));
    binding.free(p);
    expect(() => binding.free(p)).toThrow(code('ERR_UNKNOWN_POINTER'));
    expect(() => binding.usableSize(p)).toThrow(code('ERR_UNKNOWN_POINTER'));
    for (const bad of [1.5, -16, NaN, Infinity, 2 ** 53]) {
      for (const name of ['free', 'usableSize', 'malloc'] as const) expect(() => raw[name](bad), `${name}(${bad})`).toThrow(code('ERR_OUT_OF_RANGE'));
    }
    for (const name of ['free', 'usableSize', 'malloc'] as const) {
      expect(() => raw[name](), name).toThrow(code('ERR_INVALID_ARG_TYPE'));
      expect(() => raw[name]('16'), name).toThrow(code('ERR_INVALID_ARG_TYPE'));
    }
    // glibc refuses 2^52 bytes: errno ENOMEM, nothing recorded.
    const live = binding.liveCount();
    expect(() => binding.malloc(2 ** 52)).toThrow(expect.objectContaining({ code: 'ERR_ALLOC_FAILED', errno: 12 }));
    expect(binding.liveCount()).toBe(live);
  });

  it('bad sizes are rejected before glibc is called', () => {
    expect(() => malloc(-1)).toThrow(RangeError);
    expect(() => malloc(NaN)).toThrow(RangeError);
    expect(() => malloc(1.5)).toThrow(RangeError);
    expect(() => malloc(Infinity)).toThrow(RangeError);
    expect(() => malloc(1n << 63n)).toThrow(RangeError);
    expect(() => malloc(2 ** 63)).toThrow(RangeError);
    expect(() => malloc(-1n)).toThrow(code('ERR_OUT_OF_RANGE'));
    expect(() => malloc('10' as never)).toThrow(TypeError);
    expect(() => malloc(undefined as never)).toThrow(code('ERR_INVALID_ARG_TYPE'));
    expect(() => calloc(1, -5)).toThrow(RangeError);
    expect(() => alignedAlloc(3, 10)).toThrow(RangeError);
    expect(() => alignedAlloc(4, 10)).toThrow(RangeError);
  });

  it('allocation failure is ERR_ALLOC_FAILED with the errno', () => {
    let error: unknown;
    try {
      malloc(1n << 40n);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HeapscopeError);
    expect(error).toMatchObject({ code: 'ERR_ALLOC_FAILED', errno: 12, syscall: 'malloc' });
    // calloc's count × size overflow is glibc's to report.
    expect(() => calloc(1n << 62n, 16)).toThrow(code('ERR_ALLOC_FAILED'));
  });

  it('no memory left to record a pointer is ERR_ALLOC_FAILED, and the block is given back', () => {
    // A child under a 2 GB address-space limit fills the live set to the
    // size at which the next pointer makes it grow (2048), then uses the
    // memory up by growing those very blocks (realloc keeps the count), so
    // that a small malloc still succeeds but the set cannot grow.
    const child = spawnSync('/bin/sh', ['-c', 'ulimit -v 2000000 && exec "$@"', 'sh', ...nodeAgain(), process.execPath, '--single-threaded', '-e', `
      const { binding } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'binding.js'))});
      const fillers = [];
      while (binding.liveCount() < 2048) fillers.push(binding.malloc(16n));
      const held = [];
      for (let size = 1n << 29n; size >= 65536n; size /= 2n) {
        while (fillers.length > 0) {
          try { held.push(binding.realloc(fillers.at(-1), size)); fillers.pop(); } catch { break; }
        }
      }
      const outcomes = [];
      const attempt = (f) => { try { f(); outcomes.push('ok'); } catch (e) { outcomes.push(e.code); } };
      attempt(() => binding.free(binding.malloc(16n)));
      attempt(() => binding.runPlan(new BigUint64Array([1n, 0n, 16n, 0n]), true));
      const live = binding.liveCount();
      for (const p of [...held, ...fillers]) binding.free(p);
      console.log(JSON.stringify({ outcomes, live, after: binding.liveCount() }));
    `], { ...SYNC_CHILD, encoding: 'utf8', env: hostLibraries() });
    expect(child.signal, child.stderr).toBeNull();
    expect(child.status, child.stderr).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({ outcomes: ['ERR_ALLOC_FAILED', 'ERR_ALLOC_FAILED'], live: 2048, after: 0 });
  });

  it('realloc failure leaves the old block valid', () => {
    const a = malloc(10);
    const usable = a.usableSize;
    expect(() => realloc(a, 1n << 40n)).toThrow(code('ERR_ALLOC_FAILED'));
    expect(a.freed).toBe(false);
    expect(a.usableSize).toBe(usable);
    expect(() => realloc(a, 0)).toThrow(RangeError);
    a.free();
  });

  it('reads and writes past the usable size are RangeErrors', () => {
    const a = malloc(10);
    expect(() => a.read(0, 25)).toThrow(RangeError);
    expect(() => a.read(25)).toThrow(RangeError);
    expect(() => a.write(20, Buffer.alloc(5))).toThrow(RangeError);
    expect(() => a.write(-1, 'x')).toThrow(RangeError);
    expect(() => a.fill(256)).toThrow(RangeError);
    expect(() => a.write(0, 42 as never)).toThrow(TypeError);
    a.free();
  });

  it('any use after free is ERR_FREED', () => {
    const a = malloc(10);
    a.free();
    for (const use of [
      () => a.usableSize, () => a.chunk, () => a.region, () => a.read(), () => a.write(0, 'x'), () => a.fill(0),
      () => realloc(a, 20),
    ]) {
      expect(use).toThrow(code('ERR_FREED'));
    }
  });

  it('an unknown mallopt parameter or a bad value is an error', () => {
    expect(() => mallopt('M_NOPE' as never, 1)).toThrow(code('ERR_UNKNOWN_MALLOPT_PARAM'));
    expect(() => mallopt(12345, 1)).toThrow(code('ERR_UNKNOWN_MALLOPT_PARAM'));
    expect(() => mallopt(-5, 1)).toThrow(code('ERR_UNKNOWN_MALLOPT_PARAM'));
    expect(() => mallopt('M_MMAP_THRESHOLD', -10)).toThrow(RangeError);
    expect(() => mallopt('M_MMAP_THRESHOLD', 2 ** 31)).toThrow(RangeError);
    expect(() => mallopt('M_MXFAST', NaN)).toThrow(RangeError);
    // glibc itself refuses M_MXFAST above 160 (MAX_FAST_SIZE); nothing changes. From 2.43, which has no fastbins, it takes anything and does nothing.
    if (HERE.fastbins) expect(() => mallopt('M_MXFAST', 1000)).toThrow(code('ERR_MALLOPT_REJECTED'));
    else expect(() => mallopt('M_MXFAST', 1000)).not.toThrow();
  });

  it('an unreadable address is EFAULT, never a crash', () => {
    for (const address of [0n, 16n, 0xdead0000n, (1n << 47n) - 4096n, 0xffffffffffff0000n]) {
      expect(() => readMemory(address, 16)).toThrow(code('EFAULT'));
    }
    expect(() => readMemory(-1n as never, 8)).toThrow(RangeError);
    expect(() => readMemory(0x1000n, -1)).toThrow(RangeError);
  });

  it('readMemory reads what is really there', () => {
    const a = malloc(16);
    a.write(0, 'heapscope');
    expect(readMemory(a.address, 9).toString()).toBe('heapscope');
    a.free();
  });

  it('fileStat (the stat heapscope reads a libc file with) says what fs.statSync says, or fails with a code and the errno', () => {
    const file = path.join(__dirname, '..', 'package.json');
    const stat = fs.statSync(file);
    expect([...binding.fileStat(file)]).toEqual([stat.ino, stat.size, stat.mtimeMs, 0]);
    const fd = fs.openSync(file, 'r');
    try {
      expect([...binding.fileStat(fd)]).toEqual([stat.ino, stat.size, stat.mtimeMs, 0]);
    } finally {
      fs.closeSync(fd);
    }
    const dir = fs.statSync(__dirname);
    expect([...binding.fileStat(__dirname)]).toEqual([dir.ino, dir.size, dir.mtimeMs, 1]);
    expect(() => binding.fileStat(path.join(__dirname, 'no such file'))).toThrow(expect.objectContaining({ code: 'ERR_READ_FAILED', errno: 2, syscall: 'stat' }));
    expect(() => binding.fileStat(-1)).toThrow(expect.objectContaining({ code: 'ERR_READ_FAILED', errno: 9, syscall: 'fstat' }));
    expect(() => (binding.fileStat as (x: unknown) => unknown)({})).toThrow(code('ERR_INVALID_ARG_TYPE'));
  });

  it('mallocTrim validates its pad', () => {
    expect(() => mallocTrim(-1)).toThrow(RangeError);
    expect(typeof mallocTrim(0)).toBe('boolean');
  });

  it('a handle cannot be forged: new Allocation() throws ERR_ILLEGAL_CONSTRUCTOR and frees nothing', () => {
    const a = malloc(32);
    // 40, or 56 when malloc handed out a chunk whose remainder was under MINSIZE.
    const usable = a.usableSize;
    const Ctor = Allocation as unknown as new (...args: unknown[]) => Allocation;
    expect(() => new Ctor(a.address, 32, 'malloc').free()).toThrow(code('ERR_ILLEGAL_CONSTRUCTOR'));
    expect(() => new Ctor(a.address, 32, 'malloc')).toThrow(TypeError);
    class Sub extends Ctor {}
    expect(() => new Sub(a.address, 32, 'malloc')).toThrow(code('ERR_ILLEGAL_CONSTRUCTOR'));
    // Objects that only look like handles: Allocation's prototype, a copy of a handle's fields, a Proxy of one.
    for (const fake of [Object.create(Allocation.prototype), { ...a }, new Proxy(a, {})]) {
      expect(() => free(fake)).toThrow(code('ERR_INVALID_ARG_TYPE'));
      expect(() => realloc(fake, 64)).toThrow(code('ERR_INVALID_ARG_TYPE'));
      expect(() => mallocUsableSize(fake)).toThrow(code('ERR_INVALID_ARG_TYPE'));
      expect(() => Allocation.prototype.free.call(fake)).toThrow(code('ERR_INVALID_ARG_TYPE'));
      expect(() => Allocation.prototype.read.call(fake)).toThrow(code('ERR_INVALID_ARG_TYPE'));
      expect(() => Allocation.prototype.write.call(fake, 0, 'x')).toThrow(code('ERR_INVALID_ARG_TYPE'));
      expect(() => Allocation.prototype.fill.call(fake, 0)).toThrow(code('ERR_INVALID_ARG_TYPE'));
      for (const getter of ['freed', 'usableSize', 'chunk', 'region'] as const) {
        const get = Object.getOwnPropertyDescriptor(Allocation.prototype, getter)!.get!;
        expect(() => get.call(fake), getter).toThrow(code('ERR_INVALID_ARG_TYPE'));
      }
    }
    // Nor can a live handle be marked dead from outside.
    expect((Allocation as unknown as Record<string, unknown>).release).toBeUndefined();
    expect(a.freed).toBe(false);
    expect(binding.isLive(a.address)).toBe(true);
    expect(a.usableSize).toBe(usable);
    a.free();
  });

  it('read() of a block above MAX_READ names the limit and the way round it', () => {
    const a = malloc(100 << 20);
    try {
      expect(() => a.read()).toThrow(expect.objectContaining({
        code: 'ERR_OUT_OF_RANGE',
        message: expect.stringMatching(/^read\(\) with no length would copy \d+ bytes .*MAX_READ \(67108864 bytes, 64 MiB\).*read\(offset, length\)/),
      }));
      expect(() => a.read(0, MAX_READ + 1n)).toThrow(expect.objectContaining({
        code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/MAX_READ \(67108864 bytes, 64 MiB\)/),
      }));
      expect(() => readMemory(a.address, MAX_READ + 1n)).toThrow(expect.objectContaining({
        code: 'ERR_OUT_OF_RANGE', message: expect.stringMatching(/MAX_READ \(67108864 bytes, 64 MiB\)/),
      }));
      // In pieces it reads.
      const usable = BigInt(a.usableSize);
      expect(a.read(usable - MAX_READ, MAX_READ).length).toBe(Number(MAX_READ));
    } finally {
      a.free();
    }
  });
});
