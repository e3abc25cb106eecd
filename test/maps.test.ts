import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { isDeepStrictEqual } from 'node:util';
import { runInNewContext } from 'node:vm';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { malloc } from '../lib/allocation';
import { binding } from '../lib/binding';
import { classifiedMap, maps, MemoryRegion, ownImageEnds, parseMaps, parseSmaps, readOwnImages, regionOf, RegionKind, untouchedReadsZero } from '../lib/maps';
import { imageEnds, ReadImages } from '../lib/maps/classify';
import { IN_WORDS, OP_CODES } from '../lib/plan-codes';
import { inQuietChild } from './helpers/quiet-child';

/** A plan of one maps step, for the map as the addon reads it. */
function mapsPlan(): BigUint64Array {
  const plan = new BigUint64Array(IN_WORDS);
  plan[0] = BigInt(OP_CODES.maps);
  return plan;
}

const fixture = (name: string): string => fs.readFileSync(path.join(__dirname, 'fixtures', 'maps', name), 'utf8');

const NODE = '/usr/bin/node';
const LIBC = '/usr/lib/x86_64-linux-gnu/libc.so.6';
const LD = '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2';
const FOO = '/opt/app/lib/libfoo.so';
const GAP = '/opt/app/lib/libgap.so';

// Every line of node-process.maps, in order: start, kind, object.
const EXPECTED: [string, RegionKind, string?][] = [
  ['400000', 'rodata', NODE], // ELF header, .rodata: read-only, and node has text
  ['b6f000', 'text', NODE],
  ['b72000', 'text', NODE],
  ['2600000', 'text', NODE],
  ['2601000', 'rodata', NODE],
  ['563a000', 'rodata', NODE], // RELRO: data made read-only after relocation
  ['563e000', 'data', NODE],
  ['565d000', 'bss', NODE], // anonymous, starts where node's last segment ends
  ['1813c000', 'heap'],
  ['14f29600000', 'anonymous'], // [anon:v8 old space]
  ['25db11c0000', 'anonymous'],
  ['e6d84440000', 'anonymous'],
  // V8's code range: a 64 MiB-aligned rw-p, but its ---p neighbour stops short of the 64 MiB boundary.
  ['7f0044000000', 'anonymous'],
  ['7f0044002000', 'reserved'],
  ['7f0044003000', 'anonymous'],
  ['7f004403f000', 'reserved'],
  ['7f0063e40000', 'text', NODE], // builtins remapped from the node binary into the code range
  ['7f0063fd2000', 'reserved'],
  ['7f0064000000', 'arena-heap'], // grown to the full 64 MiB: no ---p left
  ['7f0068000000', 'arena-heap'],
  ['7f0068021000', 'arena-reserved'],
  ['7f006c000000', 'arena-heap'],
  ['7f006c0c6000', 'arena-reserved'], // shrink_heap's PROT_NONE remap does not merge with the rest
  ['7f006c800000', 'arena-reserved'],
  ['7f0070000000', 'anonymous'], // aligned, but 4 MiB + 4 KiB and alone: an mmapped chunk
  ['7f0070800000', 'anonymous'], // rw-p + ---p like an arena, but not 64 MiB-aligned
  ['7f0070821000', 'reserved'],
  ['7f00749fa000', 'reserved'], // a thread stack's guard page
  ['7f00749fb000', 'anonymous'], // and the stack
  ['7f0075200000', 'file'],
  ['7f0075202000', 'file'],
  ['7f0075204000', 'file'],
  ['7f0075206000', 'file'],
  ['7f0075306000', 'anonymous'],
  ['7f0075400000', 'file'], // read-only, but LC_CTYPE has no text: not rodata
  ['7f0075700000', 'rodata', FOO],
  ['7f0075702000', 'text', FOO],
  ['7f0075705000', 'rodata', FOO],
  ['7f0075706000', 'data', FOO],
  ['7f0075707000', 'bss', FOO],
  ['7f0075800000', 'rodata', GAP],
  ['7f0075801000', 'reserved', GAP], // the hole between two segments, mapped PROT_NONE by ld.so
  ['7f0075a00000', 'text', GAP],
  ['7f0075a02000', 'data', GAP],
  ['7f0075c00000', 'rodata', LIBC],
  ['7f0075c26000', 'text', LIBC],
  ['7f0075d7c000', 'rodata', LIBC],
  ['7f0075dcf000', 'rodata', LIBC],
  ['7f0075dd3000', 'data', LIBC],
  ['7f0075dd5000', 'bss', LIBC],
  ['7f0075de2000', 'anonymous'], // adjacent to the bss, not to a file: not bss
  ['7f0075de4000', 'vvar'],
  ['7f0075de8000', 'vvar'],
  ['7f0075dea000', 'vdso'],
  ['7f0075dec000', 'rodata', LD],
  ['7f0075ded000', 'text', LD],
  ['7f0075e13000', 'rodata', LD],
  ['7f0075e1d000', 'rodata', LD],
  ['7f0075e1f000', 'data', LD],
  ['7fff5021f000', 'stack'],
  ['ffffffffff600000', 'vsyscall'],
];

function at(regions: MemoryRegion[], start: bigint): MemoryRegion {
  const region = regions.find((r) => r.start === start);
  if (region === undefined) throw new Error(`no region at 0x${start.toString(16)}`);
  return region;
}

function expectSortedAndDisjoint(regions: MemoryRegion[]): void {
  for (let i = 1; i < regions.length; i++) expect(regions[i].start).toBeGreaterThanOrEqual(regions[i - 1].end);
}

describe('parseMaps on a recorded node process', () => {
  const regions = parseMaps(fixture('node-process.maps'));

  it('gives every line a region, with the kind and object of the table', () => {
    expect(regions.map((r) => [r.start.toString(16), r.kind, r.object])).toEqual(
      EXPECTED.map(([start, kind, object]) => [start, kind, object]),
    );
    expectSortedAndDisjoint(regions);
  });

  it('parses every field of a file mapping', () => {
    expect(at(regions, 0xb72000n)).toEqual({
      start: 0xb72000n,
      end: 0x25fe000n,
      size: 0x25fe000 - 0xb72000,
      perms: 'r-xp',
      readable: true,
      writable: false,
      executable: true,
      shared: false,
      offset: 0x772000,
      dev: 'fe:00',
      inode: 260689,
      path: NODE,
      deleted: false,
      kind: 'text',
      object: NODE,
    });
  });

  it('parses an anonymous line, which ends with a space after the inode', () => {
    const bss = at(regions, 0x565d000n);
    expect(bss).toMatchObject({ end: 0x5689000n, perms: 'rw-p', offset: 0, dev: '00:00', inode: 0, path: '', deleted: false });
    expect(bss).not.toHaveProperty('name');
    expect(bss).not.toHaveProperty('rss');
  });

  it('keeps bracketed names as the path and takes the name out of [anon:…]', () => {
    expect(at(regions, 0x1813c000n)).toMatchObject({ path: '[heap]', kind: 'heap' });
    expect(at(regions, 0x14f29600000n)).toMatchObject({ path: '[anon:v8 old space]', name: 'v8 old space' });
    expect(at(regions, 0x7f0044003000n)).toMatchObject({ name: 'v8 code space', perms: 'rwxp', executable: true });
    expect(at(regions, 0x7f0075306000n)).toMatchObject({ name: ' glibc: loader malloc', kind: 'anonymous' });
    expect(at(regions, 0x7f0075de8000n).path).toBe('[vvar_vclock]');
  });

  it('keeps spaces in paths and strips " (deleted)"', () => {
    expect(at(regions, 0x7f0075200000n)).toMatchObject({
      path: '/home/user/My Data/cache file.bin', deleted: false, shared: true, perms: 'r--s', inode: 2146503,
    });
    expect(at(regions, 0x7f0075202000n)).toMatchObject({ path: '/tmp/with space.bin', deleted: true });
    expect(at(regions, 0x7f0075204000n)).toMatchObject({
      path: '/memfd:jit code', deleted: true, dev: '00:01', inode: 1046, writable: true, shared: true,
    });
    expect(at(regions, 0x7f0075702000n)).toMatchObject({ path: FOO, deleted: true, object: FOO, kind: 'text' });
    expect(at(regions, 0x7f0075707000n)).toMatchObject({ path: '', deleted: false, object: FOO, kind: 'bss' });
  });

  it('holds addresses above 2^53 exactly', () => {
    const vsyscall = regions[regions.length - 1];
    expect(vsyscall).toMatchObject({
      start: 0xffffffffff600000n, end: 0xffffffffff601000n, size: 4096, perms: '--xp', readable: false, executable: true,
    });
    expect(vsyscall.start > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
  });

  it('finds regions with regionOf, and nothing in holes', () => {
    expect(regionOf(0x1813c000n, regions)?.kind).toBe('heap');
    expect(regionOf(0x183fefffn, regions)?.kind).toBe('heap');
    expect(regionOf(0x183ff000n, regions)).toBeUndefined();
    expect(regionOf(0n, regions)).toBeUndefined();
    expect(regionOf(0x3fffffn, regions)).toBeUndefined();
    expect(regionOf(0x400000n, regions)?.end).toBe(0xb6f000n);
    expect(regionOf(0xb71000n, regions)).toBeUndefined(); // the gap between node's text segments
    expect(regionOf(0x7f0068020fffn, regions)?.kind).toBe('arena-heap');
    expect(regionOf(0x7f0068021000n, regions)?.kind).toBe('arena-reserved');
    expect(regionOf(0xffffffffff600fffn, regions)?.kind).toBe('vsyscall');
    expect(regionOf(0xffffffffffffffffn, regions)).toBeUndefined();
    expect(regionOf(0n, [])).toBeUndefined();
  });
});

describe('parseMaps edge cases', () => {
  const line = (start: string, end: string, perms: string, tail = '00000000 00:00 0 '): string =>
    `${start}-${end} ${perms} ${tail}`;

  it('accepts empty text and a missing final newline', () => {
    expect(parseMaps('')).toEqual([]);
    expect(parseMaps('00400000-00401000 r--p 00000000 00:00 0')).toHaveLength(1);
  });

  it('takes [stack:tid] (Linux 3.4 to 4.4 thread stacks) as a stack', () => {
    const [r] = parseMaps(line('7f0000000000', '7f0000800000', 'rw-p', '00000000 00:00 0 [stack:1234]'));
    expect(r).toMatchObject({ kind: 'stack', path: '[stack:1234]' });
  });

  it('recognises an arena that glibc named (glibc.mem.decorate_maps)', () => {
    const named = '00000000 00:00 0 [anon: glibc: malloc arena]';
    const [heap, rest] = parseMaps(
      [line('7f0010000000', '7f0010021000', 'rw-p', named), line('7f0010021000', '7f0014000000', '---p', named)].join('\n'),
    );
    expect([heap.kind, rest.kind, heap.name]).toEqual(['arena-heap', 'arena-reserved', ' glibc: malloc arena']);
  });

  it('does not take an anonymous mapping after a non-ELF file as bss', () => {
    const [, after] = parseMaps(
      [line('7f0000000000', '7f0000001000', 'rw-p', '00000000 fe:00 12 /var/data.bin'), line('7f0000001000', '7f0000002000', 'rw-p')].join('\n'),
    );
    expect(after.kind).toBe('anonymous');
  });

  it.each([
    ['garbage', 'hello'],
    ['uppercase hex', '00400000-00B6F000 r--p 00000000 fe:00 1 /x'],
    ['bad perms', '00400000-00b6f000 rwzp 00000000 fe:00 1 /x'],
    ['missing inode', '00400000-00b6f000 r--p 00000000 fe:00'],
    ['no space before the path', '00400000-00b6f000 r--p 00000000 fe:00 1/x'],
    ['an empty line', '\n00400000-00b6f000 r--p 00000000 fe:00 1 /x'],
  ])('rejects %s with ERR_READ_FAILED naming the line', (_, text) => {
    expect(() => parseMaps(text)).toThrow(expect.objectContaining({ name: 'HeapscopeError', code: 'ERR_READ_FAILED' }));
    expect(() => parseMaps(text)).toThrow(/line 1\b/);
  });

  it("reads each line as the kernel's grammar does, for every cut and every damaged character of recorded lines", () => {
    // The kernel's "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " then padding and the path, as one regex: the oracle
    // for the hand-written reader, on prefixes of real lines and on lines with one character replaced.
    const GRAMMAR = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)(?: +(.*))?$/s;
    const lines = fixture('node-process.maps').split('\n').filter((l, i) => l !== '' && i % 7 === 0);
    let accepted = 0;
    let rejected = 0;
    for (const whole of lines) {
      const variants = [...whole].flatMap((_, i) => [whole.slice(0, i), ...['x', ' ', '-', 'f', '9'].map((c) => whole.slice(0, i) + c + whole.slice(i + 1))]);
      for (const text of [whole, ...variants]) {
        const m = GRAMMAR.exec(text);
        const ok = m !== null && BigInt(`0x${m[2]}`) > BigInt(`0x${m[1]}`);
        let region: MemoryRegion | undefined;
        try {
          [region] = parseMaps(text);
        } catch (error) {
          expect(error).toMatchObject({ code: 'ERR_READ_FAILED' });
        }
        expect({ text, ok: region !== undefined }).toEqual({ text, ok });
        if (m === null || region === undefined) {
          rejected++;
          continue;
        }
        accepted++;
        const printed = m[7] ?? '';
        const deleted = printed.endsWith(' (deleted)');
        expect(region).toMatchObject({
          start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), perms: m[3], offset: Number(BigInt(`0x${m[4]}`)), dev: m[5],
          inode: Number(m[6]), path: deleted ? printed.slice(0, -' (deleted)'.length) : printed, deleted,
        });
      }
    }
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });

  it('names the line of a malformed entry further down', () => {
    const text = `${line('00400000', '00401000', 'r--p')}\n${line('00401000', '00402000', 'r--p')}\n00402000-00403000 r--p\n`;
    expect(() => parseMaps(text)).toThrow(/line 3\b/);
  });

  it('rejects empty, overlapping and out-of-order regions', () => {
    expect(() => parseMaps(line('00401000', '00401000', 'r--p'))).toThrow(/line 1\b.*not above/);
    expect(() => parseMaps(`${line('00400000', '00402000', 'r--p')}\n${line('00401000', '00403000', 'r--p')}`)).toThrow(/line 2\b/);
    expect(() => parseMaps(`${line('00402000', '00403000', 'r--p')}\n${line('00400000', '00401000', 'r--p')}`)).toThrow(/line 2\b/);
  });

  it('checks its arguments', () => {
    expect(() => parseMaps(undefined as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => regionOf(1 as unknown as bigint, [])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => regionOf(-1n, [])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => regionOf(1n << 64n, [])).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => regionOf(0n, {} as unknown as MemoryRegion[])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => maps(null as unknown as {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => maps({ rss: 1 as unknown as boolean })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe('parseMaps of the text it parsed last', () => {
  const text = fixture('node-process.maps');

  it('gives equal regions, made afresh, that a caller may change without changing the next', () => {
    // Another text first: whatever ran before, `first` is a parse, and the copies are compared with it.
    parseMaps('');
    const first = parseMaps(text);
    const snapshot = first.map((r) => ({ ...r }));
    const again = parseMaps(text);
    expect(again).toEqual(first);
    again.forEach((r, i) => {
      expect(r).not.toBe(first[i]);
      expect(Object.keys(r)).toEqual(Object.keys(first[i]));
      expect(Object.getPrototypeOf(r)).toBe(Object.getPrototypeOf(first[i]));
    });
    // Changed every way a caller can: a field set, one deleted, one added.
    for (const r of [...first, ...again]) {
      r.kind = 'reserved';
      delete r.object;
      (r as MemoryRegion & { extra?: number }).extra = 1;
    }
    const third = parseMaps(text);
    expect(third.map((r) => ({ ...r }))).toEqual(snapshot);
    expect(third.map((r) => Object.keys(r))).toEqual(snapshot.map((r) => Object.keys(r)));
  });

  it('parses a text that differs in one character afresh', () => {
    parseMaps(text);
    const line = text.split('\n').find((l) => l.endsWith('[heap]'))!;
    const changed = text.replace(line, line.replace('rw-p', 'r--p'));
    const heap = parseMaps(changed).find((r) => r.path === '[heap]')!;
    expect(heap).toMatchObject({ perms: 'r--p', writable: false });
    expect(parseMaps(text).find((r) => r.path === '[heap]')).toMatchObject({ perms: 'rw-p', writable: true });
  });

  it('throws for malformed text, whatever it parsed last', () => {
    parseMaps(text);
    expect(() => parseMaps(`${text}zz\n`)).toThrow(/malformed maps text/);
    expect(() => parseMaps(`${text}zz\n`)).toThrow(/malformed maps text/);
  });

  it('reads a changed map of this process afresh: maps() shows a mapping made and unmapped between two calls', () => {
    const before = maps();
    // Above glibc's largest dynamic mmap threshold (32 MiB): always a mapping of its own.
    const big = malloc(64 << 20);
    const during = maps();
    big.free();
    const after = maps();
    const holds = (regions: MemoryRegion[]): boolean => regions.some((r) => r.start <= big.address && big.address < r.end && r.kind === 'anonymous');
    expect(holds(before)).toBe(false);
    expect(holds(during)).toBe(true);
    expect(holds(after)).toBe(false);
  });
});

describe('parseMaps of a text that shares lines with the last', () => {
  const text = fixture('node-process.maps');
  const lines = text.split('\n').filter((l) => l !== '');
  /** A parse of `t` that can reuse nothing: the text before it has no lines. */
  const fresh = (t: string): MemoryRegion[] => {
    parseMaps('');
    return parseMaps(t);
  };
  const expectSame = (got: MemoryRegion[], want: MemoryRegion[]): void => {
    expect(got).toEqual(want);
    expect(got.map((r) => Object.keys(r))).toEqual(want.map((r) => Object.keys(r)));
    got.forEach((r, i) => expect(Object.getPrototypeOf(r)).toBe(Object.getPrototypeOf(want[i])));
  };

  it('gives what a parse of the text alone gives, for lines removed, changed and added (1,000 random edits)', () => {
    // A 32-bit LCG: the same edits every run.
    let seed = 0x2545f491;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    let previous = text;
    for (let trial = 0; trial < 1000; trial++) {
      const edited = [...lines];
      for (let e = 1 + next(4); e > 0; e--) {
        const at = next(edited.length);
        const kind = next(3);
        if (kind === 0) edited.splice(at, 1);
        // A changed line: its permissions, which change its kind and its neighbours' (bss, arena heaps).
        else if (kind === 1) edited[at] = edited[at].replace(/ ([r-][w-][x-][ps]) /, (_, p) => ` ${p === 'rw-p' ? 'r--p' : 'rw-p'} `);
        // An added line: the upper half of a region split off as a line of its own.
        else {
          const [, start, end, rest] = /^([0-9a-f]+)-([0-9a-f]+)( .*)$/s.exec(edited[at])!;
          const middle = ((BigInt(`0x${start}`) + BigInt(`0x${end}`)) / 2n) & ~0xfffn;
          if (middle > BigInt(`0x${start}`)) edited.splice(at, 1, `${start}-${middle.toString(16)}${rest}`, `${middle.toString(16)}-${end}${rest}`);
        }
      }
      const t = `${edited.join('\n')}\n`;
      const want = fresh(t);
      parseMaps(previous);
      const got = parseMaps(t);
      expectSame(got, want);
      previous = t;
    }
  });

  it('gives what a parse of the text alone gives, for each line removed or changed alone', () => {
    // Every single edit: a kind reaches across lines (a bss, an arena heap's
    // first line and its whole reserved tail, an object's mappings), so each
    // line's edit checks how far the lines classified afresh reach.
    const flip = (line: string): string => line.replace(/ ([r-][w-][x-][ps]) /, (_, p) => ` ${p === 'rw-p' ? 'r--p' : 'rw-p'} `);
    for (let at = 0; at < lines.length; at++) {
      for (const edited of [lines.filter((_, i) => i !== at), lines.map((l, i) => (i === at ? flip(l) : l))]) {
        const t = `${edited.join('\n')}\n`;
        const want = fresh(t);
        parseMaps(text);
        expectSame(parseMaps(t), want);
        expectSame(parseMaps(text), fresh(text));
        parseMaps(t);
        expectSame(parseMaps(text), fresh(text));
      }
    }
  });

  it('gives what a parse of the text alone gives, over generated maps edited twice (3,000 of them)', () => {
    // Maps made of arena heaps (a reserved tail of one or two lines, some
    // named), ELF objects (with or without a bss), and lines of any
    // permissions and path; each edited by removing, re-permitting,
    // renaming, splitting or merging lines, so that executable lines, arena
    // tails and bss neighbours appear and go between one text and the next.
    let seed = 0x6d2b79f5;
    const next = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const HEAP = 64n << 20n;
    const PAGE = 4096n;
    const PERMS = ['rw-p', '---p', 'r--p', 'r-xp', 'rw-s', 'rwxp'];
    const PATHS = ['', '', '', '/lib/a.so', '/lib/b.so', '[anon:x]', '[heap]', '/data'];
    type Line = [bigint, bigint, string, string];
    const generate = (): Line[] => {
      const out: Line[] = [];
      let at = HEAP * BigInt(1 + next(3));
      for (let n = 3 + next(10); n > 0; n--) {
        if (next(3) === 0) at = ((at + HEAP - 1n) / HEAP) * HEAP;
        else if (next(3) === 0) at += PAGE * BigInt(1 + next(4));
        const kind = next(4);
        if (kind === 0) {
          const grown = at + PAGE * BigInt(1 + next(8));
          out.push([at, grown, 'rw-p', '']);
          const cut = grown + PAGE * BigInt(next(3));
          if (cut > grown) out.push([grown, cut, '---p', next(2) === 0 ? '' : '[anon:r]'], [cut, at + HEAP, '---p', '']);
          else out.push([grown, at + HEAP, '---p', '']);
          at += HEAP;
        } else if (kind === 1) {
          const file = PATHS[3 + next(2)];
          for (const perms of ['r--p', 'r-xp', 'r--p', 'rw-p']) {
            const end = at + PAGE * BigInt(1 + next(3));
            out.push([at, end, perms, file]);
            at = end;
          }
          if (next(2) === 0) out.push([at, (at += PAGE), 'rw-p', '']);
        } else {
          const end = at + PAGE * BigInt(1 + next(5));
          out.push([at, end, PERMS[next(PERMS.length)], PATHS[next(PATHS.length)]]);
          at = end;
        }
      }
      return out;
    };
    const edit = (lines: Line[]): Line[] => {
      const out = lines.map((l): Line => [...l]);
      for (let k = 1 + next(3); k > 0 && out.length > 0; k--) {
        const i = next(out.length);
        const [start, end, perms, file] = out[i];
        const op = next(5);
        if (op === 0) out.splice(i, 1);
        else if (op === 1) out[i][2] = PERMS[next(PERMS.length)];
        else if (op === 2) out[i][3] = PATHS[next(PATHS.length)];
        else if (op === 3) {
          const middle = ((start + end) / 2n) & ~(PAGE - 1n);
          if (middle > start) out.splice(i, 1, [start, middle, perms, file], [middle, end, perms, file]);
        } else if (i + 1 < out.length && end === out[i + 1][0] && perms === out[i + 1][2] && file === out[i + 1][3]) {
          out.splice(i, 2, [start, out[i + 1][1], perms, file]);
        }
      }
      return out;
    };
    const hex8 = (v: bigint): string => v.toString(16).padStart(8, '0');
    const textOf = (lines: Line[]): string => lines.map(([start, end, perms, file]) =>
      `${hex8(start)}-${hex8(end)} ${perms} 00000000 ${file.startsWith('/') ? `08:01 ${file.length * 7}` : '00:00 0'}${file === '' ? '' : `          ${file}`}\n`).join('');
    const shape = (regions: MemoryRegion[]) => regions.map((r) => ({ ...r, keys: Object.keys(r).join() }));
    const alone = (t: string) => shape(fresh(t));
    const wrong: string[] = [];
    for (let trial = 0; trial < 3000; trial++) {
      const first = generate();
      const second = edit(first);
      const texts = [first, second, edit(second)].map(textOf);
      const want = texts.map(alone);
      parseMaps('');
      texts.forEach((t, k) => {
        if (!isDeepStrictEqual(shape(parseMaps(t)), want[k])) wrong.push(`trial ${trial}, text ${k}:\n${texts.slice(0, k + 1).join('--\n')}`);
      });
    }
    expect(wrong.slice(0, 3)).toEqual([]);
  });

  it('classifies a line it did not parse again by its new neighbours', () => {
    const at = EXPECTED.findIndex(([, kind]) => kind === 'bss');
    expect(at).toBeGreaterThan(0);
    // Without the object's last file mapping just below it, the same line is no bss.
    const without = `${lines.filter((_, i) => i !== at - 1).join('\n')}\n`;
    parseMaps(text);
    const region = parseMaps(without)[at - 1];
    expect(region.start).toBe(BigInt(`0x${EXPECTED[at][0]}`));
    expect(region.kind).toBe('anonymous');
    expect(Object.hasOwn(region, 'object')).toBe(false);
    expect(parseMaps(text)[at]).toMatchObject({ kind: 'bss', object: EXPECTED[at][2] });
  });

  it('keeps no earlier text alive through the lines it keeps', () => {
    // Each text adds a line that stays in every later one: a kept region
    // whose path were a slice of its text would keep all 1,000 texts (about
    // 100 MB) alive through the last one.
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const added: string[] = [];
    const top = 0x7fff60000000;
    parseMaps('');
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let k = 0; k < 1000; k++) {
      const at = (top + k * 0x1000).toString(16);
      added.push(`${at}-${(top + (k + 1) * 0x1000).toString(16)} rw-p 00000000 00:00 0 /a/file/of/its/own-${k}${' '.repeat(200)}`);
      parseMaps(`${[...lines.slice(0, -1), ...added, lines[lines.length - 1]].join('\n')}\n`);
    }
    gc();
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(32 << 20);
  });

  it('refuses lines it knows out of order, and gives regions a caller may change without changing the next', () => {
    parseMaps(text);
    const swapped = [...lines];
    [swapped[10], swapped[11]] = [swapped[11], swapped[10]];
    expect(() => parseMaps(`${swapped.join('\n')}\n`)).toThrow(/line 12\b.*not above/);
    const want = fresh(text);
    const shorter = `${lines.slice(1).join('\n')}\n`;
    for (const r of parseMaps(shorter)) {
      r.kind = 'reserved';
      r.path = 'changed';
      delete r.name;
    }
    expectSame(parseMaps(text), want);
  });
});

describe('parseSmaps', () => {
  const text = fixture('node-process.smaps');
  const regions = parseSmaps(text);

  it('parses the headers like parseMaps and fills rss, pss and anonymous in bytes', () => {
    const headers = text.split('\n').filter((l) => /^[0-9a-f]+-/.test(l)).join('\n');
    const plain = parseMaps(headers);
    expect(regions.map(({ rss, pss, anonymous, ...rest }) => rest)).toEqual(plain);
    expect(regions.map((r) => r.kind)).toEqual([
      'text', 'data', 'bss', 'heap', 'anonymous', 'arena-heap', 'arena-reserved', 'data', 'vdso', 'vsyscall',
    ]);
    expect(at(regions, 0xb72000n)).toMatchObject({ rss: 9380 * 1024, pss: 9380 * 1024, anonymous: 0 });
    expect(at(regions, 0x563e000n)).toMatchObject({ rss: 124 * 1024, anonymous: 84 * 1024 });
    expect(at(regions, 0x7f0075dea000n)).toMatchObject({ rss: 4096, pss: 0 }); // shared by every process
    expect(at(regions, 0xffffffffff600000n)).toMatchObject({ rss: 0, pss: 0, anonymous: 0 });
  });

  it('rejects a field before any region, a region without Rss, and stray lines', () => {
    expect(() => parseSmaps('Rss: 4 kB\n')).toThrow(/line 1\b/);
    expect(() => parseSmaps('00400000-00401000 r--p 00000000 00:00 0 \nPss: 4 kB\nAnonymous: 0 kB\n')).toThrow(/line 1\b.*Rss/);
    expect(() => parseSmaps('00400000-00401000 r--p 00000000 00:00 0 \nRss: 4 MB\nPss: 4 kB\nAnonymous: 0 kB\n')).toThrow(/Rss/);
    expect(() => parseSmaps(text.replace('THPeligible:', 'THP eligible'))).toThrow(/line 24\b/);
  });
});

describe('parseSmaps of a process under glibc.malloc.hugetlb=2', () => {
  // A C program on glibc 2.36 with huge pages reserved (the program's own lines left out): a thread heap of huge pages
  // in two read-write lines (the kernel does not merge them) and a reserved tail, main_arena's memory in a third.
  const regions = parseSmaps(fixture('huge-pages.smaps'));
  const huge = regions.filter((r) => r.path === '/anon_hugepage');

  it('reads memory of huge pages as anonymous memory, not as a file\'s data', () => {
    expect(huge.map((r) => [r.start.toString(16), r.perms, r.kind, r.deleted, Object.hasOwn(r, 'object')])).toEqual([
      ['7f6da7800000', 'rw-p', 'anonymous', true, false],
      ['7f6da7a00000', 'rw-p', 'anonymous', true, false],
      ['7f6da7c00000', '---p', 'reserved', true, false],
      ['7f6da9600000', 'rw-p', 'anonymous', true, false],
    ]);
    // A copy leaves its pages never touched zero instead of reading them: a read of one would take a huge page from the pool.
    expect(huge.filter((r) => r.readable).map((r) => untouchedReadsZero(r))).toEqual([true, true, true]);
  });

  it('counts huge pages resident (Private_Hugetlb), which smaps\' Rss leaves out', () => {
    expect(huge.map((r) => r.rss)).toEqual([2 << 20, 2 << 20, 0, 2 << 20]);
    expect(huge.map((r) => r.pss)).toEqual([0, 0, 0, 0]);
    expect(at(regions, 0x7f6da8000000n)).toMatchObject({ kind: 'anonymous', rss: 248 * 1024 });
  });
});

describe('maps() of this process', () => {
  it('has one heap, one stack and a vdso, sorted and disjoint', () => {
    const regions = maps();
    const count = (kind: RegionKind): number => regions.filter((r) => r.kind === kind).length;
    expect(count('heap')).toBe(1);
    expect(count('stack')).toBe(1);
    expect(count('vdso')).toBe(1);
    expectSortedAndDisjoint(regions);
    for (const r of regions) expect(r.size).toBe(Number(r.end - r.start));
  });

  it('puts the program break at the end of the heap', () => {
    expect(regionOf(binding.programBreak() - 1n)?.kind).toBe('heap');
  });

  it('finds a small malloc from main_arena in the heap', () => {
    // Up to 7 may come from this thread's tcache, which can hold chunks of
    // other threads' arenas; the 8th is main_arena's (see allocation.test.ts).
    const ps = Array.from({ length: 8 }, () => binding.malloc(10n));
    try {
      expect(regionOf(BigInt(ps[7]))?.kind).toBe('heap'); // the raw binding hands pointers out as numbers
    } finally {
      for (const p of ps) binding.free(p);
    }
  });

  it("classifies the node binary's and libc's mappings", () => {
    const regions = maps();
    const libc = regions.filter((r) => /\/libc\.so\.6$/.test(r.path));
    expect(libc.map((r) => r.kind)).toContain('text');
    expect(libc.map((r) => r.kind)).toContain('data');
    expect(libc.every((r) => r.object === r.path)).toBe(true);
    const exe = fs.realpathSync(process.execPath);
    expect(regions.filter((r) => r.path === exe).map((r) => r.kind)).toContain('text');
  });

  it("claims no bss past an object's memory image (heapscope.node's .bss fits in its data page)", () => {
    const regions = maps();
    const addon = regions.filter((r) => r.path.endsWith('heapscope.node'));
    expect(addon.length).toBeGreaterThan(0);
    const after = regions[regions.indexOf(addon[addon.length - 1]) + 1];
    if (after !== undefined && after.start === addon[addon.length - 1].end) expect(after.kind).not.toBe('bss');
  });

  it('checks every bss against its ELF image with one read for all the images, as reading them one by one does', () => {
    const text = (binding.runPlan as unknown as (plan: BigUint64Array, keep: boolean) => { texts: string[] })(mapsPlan(), false).texts[0];
    const calls: number[] = [];
    // The oracle: each range read on its own through readMemory.
    const oneByOne: ReadImages = (ranges) => {
      calls.push(ranges.length);
      return ranges.map(({ address, length }) => {
        try {
          return binding.readMemory(address, length);
        } catch {
          return undefined;
        }
      });
    };
    const regions = classifiedMap({}, () => text, oneByOne);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toBeGreaterThan(0);
    expect(regions.filter((r) => r.kind === 'bss').length).toBeGreaterThan(0);
    expect(classifiedMap({}, () => text, readOwnImages)).toEqual(regions);
    // An image that cannot be read keeps the text's guess; one whose header says it ends below the bss loses it.
    const bss = regions.find((r) => r.kind === 'bss')!;
    const unreadable = classifiedMap({}, () => text, (ranges) => ranges.map(() => undefined));
    expect(unreadable.find((r) => r.start === bss.start)!.kind).toBe('bss');
    const shrunk = classifiedMap({}, () => text, (ranges) => oneByOne(ranges).map((head) => {
      if (head === undefined) return head;
      // Every PT_LOAD's p_memsz set to one byte: each image ends in its first page.
      const copy = Buffer.from(head);
      const phoff = Number(copy.readBigUInt64LE(0x20));
      for (let k = 0; k < copy.readUInt16LE(0x38); k++) {
        const at = phoff + k * copy.readUInt16LE(0x36);
        if (copy.readUInt32LE(at) === 1) copy.writeBigUInt64LE(1n, at + 0x28);
      }
      return copy;
    }));
    expect(shrunk.find((r) => r.start === bss.start)).toMatchObject({ kind: 'anonymous' });
    expect(shrunk.find((r) => r.start === bss.start)).not.toHaveProperty('object');
    // The same text again is not parsed again, but its bss regions are checked again: what the last check unclaimed is claimed.
    expect(classifiedMap({}, () => text, readOwnImages)).toEqual(regions);
  });

  it("takes each loaded object's image end from the loader, where its ELF header in memory says it ends", () => {
    const known = ownImageEnds();
    const exe = fs.realpathSync(process.execPath);
    const text = (binding.runPlan as unknown as (plan: BigUint64Array, keep: boolean) => { texts: string[] })(mapsPlan(), false).texts[0];
    const regions = parseMaps(text);
    // The executable, libc and the addon, each by the mapping at its file offset 0.
    for (const file of [exe, regions.find((r) => /\/libc\.so\.6$/.test(r.path))!.path, regions.find((r) => r.path.endsWith('heapscope.node'))!.path]) {
      const first = regions.find((r) => r.path === file && r.offset === 0)!;
      expect(known.has(first.start), file).toBe(true);
      expect(known.get(first.start)!, file).toBeGreaterThan(first.start);
    }
    // The oracle: each image's headers read from its first page, as the check reads an object the loader does not know.
    const bases = [...known.keys()];
    expect(imageEnds(bases.map((base) => ({ base, length: 4096n })), readOwnImages)).toEqual([...known.values()]);
    // The classification is the same either way, and the images the loader knows are not read.
    const calls: bigint[][] = [];
    const counted: ReadImages = (ranges) => {
      calls.push(ranges.map((r) => r.address));
      return readOwnImages(ranges);
    };
    const fromMemory = classifiedMap({}, () => text, readOwnImages);
    expect(fromMemory.filter((r) => r.kind === 'bss').length).toBeGreaterThan(0);
    expect(classifiedMap({}, () => text, counted, () => known)).toEqual(fromMemory);
    for (const address of calls.flat()) expect(known.has(address)).toBe(false);
    // An end the loader gives is the one used: below the bss, the bss is unclaimed; one it does not give is read.
    const bss = fromMemory.find((r) => r.kind === 'bss')!;
    const base = [...known.keys()].find((b) => fromMemory.some((r) => r.start === b && r.object === bss.object))!;
    const shrunk = new Map(known);
    shrunk.set(base, bss.start);
    expect(classifiedMap({}, () => text, readOwnImages, () => shrunk).find((r) => r.start === bss.start)).toMatchObject({ kind: 'anonymous' });
    const unknown = new Map(known);
    unknown.delete(base);
    calls.length = 0;
    expect(classifiedMap({}, () => text, counted, () => unknown)).toEqual(fromMemory);
    expect(calls.flat()).toContain(base);
    // More images than one native read takes (1024) are read all the same, each in its place.
    const many = Array.from({ length: 2500 }, (_, i) => ({ base: bases[i % bases.length], length: 4096n }));
    const ends = [...known.values()];
    expect(imageEnds(many, readOwnImages)).toEqual(many.map((_, i) => ends[i % bases.length]));
  });

  it("reads images into memory the addon mapped: malloc's in-use bytes stay the same across a read of 1,000 of them", () => {
    // In a quiet child: nothing but the body mallocs between the two mallinfo2() calls.
    // Typed arrays for the words and errnos were 20 bytes a range from malloc, in use until collected.
    const out = inQuietChild<{ grew: number[]; unread: number[] }>(`
      const { ownImageEnds, readOwnImages } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'maps'))});
      const bases = [...ownImageEnds().keys()];
      const ranges = Array.from({ length: 1000 }, (_, i) => ({ address: bases[i % bases.length], length: 4096n }));
      ranges.push({ address: 4096n, length: 4096n });
      const grew = [];
      const unread = [];
      for (let round = 0; round < 8; round++) {
        const before = h.mallinfo2().uordblks;
        const read = readOwnImages(ranges);
        grew.push(h.mallinfo2().uordblks - before);
        unread.push(read.filter((bytes) => bytes === undefined).length);
      }
      return { grew: grew.slice(3), unread };
    `);
    // Page 0 is never readable; every image's first page is.
    expect(out.unread).toEqual(Array(8).fill(1));
    // The first rounds warm V8 up; its compilers and collections still malloc and free now and then (a round of +4,496 bytes was seen):
    // the median of the five rounds after them, which was 20,608 bytes before the change.
    const sorted = [...out.grew].sort((a, b) => a - b);
    expect(sorted[2]).toBeLessThan(4096);
  });

  it("keeps the image ends while the loader's list stays the same, and takes them again after a dlopen", () => {
    const first = ownImageEnds();
    expect(ownImageEnds()).toBe(first);
    const count = binding.loadedImages(new Float64Array(0));
    // A library of glibc's that nothing here loads, loaded with dlopen through koffi.
    koffi.load('libBrokenLocale.so.1');
    expect(binding.loadedImages(new Float64Array(0))).toBe(count + 1);
    const after = ownImageEnds();
    expect(after).not.toBe(first);
    expect(after.size).toBe(first.size + 1);
    const loaded = maps().find((r) => r.path.endsWith('/libBrokenLocale.so.1') && r.offset === 0)!;
    expect(first.has(loaded.start)).toBe(false);
    expect(after.get(loaded.start)).toBeGreaterThan(loaded.start);
    expect(ownImageEnds()).toBe(after);
  });

  it('refuses a loadedImages target that is not a Float64Array', () => {
    for (const bad of [undefined, new Float32Array(3), [0, 0, 0], Buffer.alloc(24)]) {
      expect(() => (binding.loadedImages as (into: unknown) => number)(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
    // Too small to hold any: the count alone.
    expect(binding.loadedImages(new Float64Array(0))).toBe(ownImageEnds().size);
  });

  it('with { rss: true } fills resident sizes on every region', () => {
    const regions = maps({ rss: true });
    expect(regions.length).toBeGreaterThan(10);
    for (const r of regions) {
      expect(r.rss).toBeDefined();
      expect(r.rss!).toBeLessThanOrEqual(r.size);
      expect(r.pss!).toBeLessThanOrEqual(r.rss!);
      expect(r.anonymous!).toBeLessThanOrEqual(r.rss!);
    }
    expect(regions.find((r) => r.kind === 'heap')!.rss!).toBeGreaterThan(0);
  });
});
