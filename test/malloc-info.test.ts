import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeapscopeError } from '../lib/errors';
import { type ArenaInfo, type MallocInfo, mallocInfo, parseMallocInfo } from '../lib/malloc-info';
import { inQuietChild } from './helpers/quiet-child';
import { HERE, NO_FASTBINS } from './helpers/glibc-here';

const fixture = (name: string): string => readFileSync(path.join(__dirname, 'fixtures', 'malloc-info', name), 'utf8');

function expectMallocInfoError(xml: string, message: RegExp): void {
  let caught: unknown;
  try {
    parseMallocInfo(xml);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(HeapscopeError);
  expect((caught as HeapscopeError).code).toBe('ERR_MALLOC_INFO');
  expect((caught as HeapscopeError).message).toMatch(message);
}

/** A minimal valid heap body, for the hand-written documents below. */
const HEAP_TAIL = `<total type="fast" count="0" size="0"/>
<total type="rest" count="1" size="2624"/>
<system type="current" size="135168"/>
<system type="max" size="135168"/>
<aspace type="total" size="135168"/>
<aspace type="mprotect" size="135168"/>`;
const TOTALS = `<total type="fast" count="0" size="0"/>
<total type="rest" count="1" size="2624"/>
<total type="mmap" count="0" size="0"/>
<system type="current" size="135168"/>
<system type="max" size="135168"/>
<aspace type="total" size="135168"/>
<aspace type="mprotect" size="135168"/>`;
const oneHeap = (sizes: string, extra = ''): string =>
  `<malloc version="1">\n<heap nr="0">\n<sizes>\n${sizes}\n</sizes>\n${HEAP_TAIL}\n${extra}</heap>\n${TOTALS}\n</malloc>\n`;

describe('parseMallocInfo: a document from glibc 2.43 (Debian\'s 2.43-7), which dropped the fastbins', () => {
  // Written by a program built against it: 20 of 48 chunks of 0x20 freed (16 to the tcache, 4 to small bin 2), one
  // 300000-byte mmapped chunk, and a thread arena.
  it('reads it with no fastbin totals, and every size line a bin\'s', () => {
    const info = parseMallocInfo(fixture('glibc-2.43.xml'));
    expect(info.arenas.map((a) => a.nr)).toEqual([0, 1]);
    for (const arena of info.arenas) expect(Object.hasOwn(arena, 'fast')).toBe(false);
    expect(Object.hasOwn(info.totals, 'fast')).toBe(false);
    expect(info.arenas[0].sizes).toStrictEqual([{ kind: 'bin', from: 33, to: 33, total: 132, count: 4 }]);
    expect(info.arenas[0].rest).toStrictEqual({ count: 5, size: 127060 });
    expect(info.arenas[1].subheaps).toBe(1);
    expect(info.totals.mmap).toStrictEqual({ count: 1, size: 303104 });
    // Its summary names no fastbins.
    expect(inspect(info)).toMatch(/free in all: 6 chunks \(252\.1 KiB\) in bins and tops\n/);
    expect(inspect(info)).not.toMatch(/fastbin/);
  });
});

describe('parseMallocInfo: fixtures from glibc 2.36', () => {
  it('reads a one-heap document field by field', () => {
    const xml = fixture('one-heap.xml');
    const info = parseMallocInfo(xml);
    expect(info.version).toBe(1);
    expect(info.raw).toBe(xml);
    expect(info.arenas).toHaveLength(1);
    expect(info.arenas[0]).toStrictEqual({
      nr: 0,
      sizes: [
        { kind: 'fastbin', from: 33, to: 48, total: 96, count: 2 },
        { kind: 'bin', from: 2017, to: 2017, total: 2017, count: 1 },
      ],
      unsorted: { from: 1217, to: 2209, total: 3426, count: 2 },
      fast: { count: 2, size: 96 },
      rest: { count: 4, size: 126723 },
      systemCurrent: 135168,
      systemMax: 135168,
      aspaceTotal: 135168,
      aspaceMprotect: 135168,
    } satisfies ArenaInfo);
    expect('subheaps' in info.arenas[0]).toBe(false);
    expect(info.totals).toStrictEqual({
      fast: { count: 2, size: 96 },
      rest: { count: 4, size: 126723 },
      mmap: { count: 0, size: 0 },
      systemCurrent: 135168,
      systemMax: 135168,
      aspaceTotal: 135168,
      aspaceMprotect: 135168,
    } satisfies MallocInfo['totals']);
  });

  it('reads a two-heap document with a thread arena and its subheaps', () => {
    const info = parseMallocInfo(fixture('two-heaps.xml'));
    expect(info.arenas.map((arena) => arena.nr)).toEqual([0, 1]);
    const [main, thread] = info.arenas;
    expect(main.subheaps).toBeUndefined();
    expect(main.rest).toEqual({ count: 4, size: 126435 });
    expect(thread).toStrictEqual({
      nr: 1,
      sizes: [
        { kind: 'fastbin', from: 17, to: 32, total: 64, count: 2 },
        { kind: 'bin', from: 3009, to: 3009, total: 3009, count: 1 },
      ],
      unsorted: { from: 1521, to: 3217, total: 4738, count: 2 },
      fast: { count: 2, size: 64 },
      rest: { count: 4, size: 123315 },
      systemCurrent: 135168,
      systemMax: 135168,
      aspaceTotal: 135168,
      aspaceMprotect: 135168,
      subheaps: 1,
    } satisfies ArenaInfo);
    expect(info.totals).toStrictEqual({
      fast: { count: 4, size: 160 },
      rest: { count: 8, size: 249750 },
      mmap: { count: 0, size: 0 },
      systemCurrent: 270336,
      systemMax: 270336,
      aspaceTotal: 270336,
      aspaceMprotect: 270336,
    });
  });
});

describe('parseMallocInfo: size lines', () => {
  it('reads an arena with empty <sizes> as no entries and no unsorted', () => {
    const arena = parseMallocInfo(oneHeap('')).arenas[0];
    expect(arena.sizes).toEqual([]);
    expect(arena.unsorted).toBeUndefined();
    expect('unsorted' in arena).toBe(false);
  });

  it('tells fastbins (the bin range) from regular bins (raw chunk sizes, odd)', () => {
    const sizes = parseMallocInfo(
      oneHeap(`  <size from="17" to="32" total="96" count="3"/>
  <size from="49" to="64" total="64" count="1"/>
  <size from="161" to="176" total="176" count="1"/>
  <size from="33" to="33" total="99" count="3"/>
  <size from="1025" to="1073" total="2098" count="2"/>
  <size from="33" to="48" total="48" count="1"/>`),
    ).arenas[0].sizes;
    expect(sizes.map((entry) => entry.kind)).toEqual(['fastbin', 'fastbin', 'fastbin', 'bin', 'bin', 'bin']);
    // The last line has the fastbin shape but comes after a regular bin: glibc
    // prints every fastbin first, so it is a bin.
    expect(sizes[3]).toEqual({ kind: 'bin', from: 33, to: 33, total: 99, count: 3 });
    expect(sizes[4]).toEqual({ kind: 'bin', from: 1025, to: 1073, total: 2098, count: 2 });
  });

  it('reads sizes up to 2^53 - 1 exactly as numbers, and rejects larger ones rather than round them', () => {
    const max = '9007199254740991';
    const arena = parseMallocInfo(oneHeap(`  <unsorted from="${max}" to="${max}" total="${max}" count="1"/>`)).arenas[0];
    expect(arena.unsorted).toEqual({ from: 2 ** 53 - 1, to: 2 ** 53 - 1, total: 2 ** 53 - 1, count: 1 });
    for (const big of ['9007199254740992', '18446744073709551615']) {
      expectMallocInfoError(
        oneHeap(`  <unsorted from="1" to="1" total="${big}" count="1"/>`),
        new RegExp(`total="${big}" is too large for a size`),
      );
    }
    expectMallocInfoError(
      oneHeap('').replace('<system type="max" size="135168"/>', '<system type="max" size="9007199254740993"/>'),
      /size="9007199254740993" is too large for a size/,
    );
  });
});

describe('parseMallocInfo: tolerance', () => {
  it('skips unknown elements, unknown types, comments, a prolog and CRLF line ends', () => {
    const xml = `\ufeff<?xml version="1.0"?>\r\n<!-- from a future glibc -->\r\n${oneHeap(
      `  <size from="17" to="32" total="32" count="1"/>
  <tcache from="17" to="32" count="7"/>
  <unknown><nested a='x &amp; y'>text &lt; <![CDATA[ <not/> a tag ]]></nested></unknown>`,
      `<aspace type="future" size="1"/>\n<aspace type="future" size="2"/>\n<total type="tcache" count="7" size="224"/>\n<extra/>\n`,
    ).replace('</malloc>', '<arena-list/>\n<total type="other" count="1" size="1"/>\n</malloc>')}\r\n<!-- trailer -->\r\n`;
    const info = parseMallocInfo(xml);
    expect(info.arenas).toHaveLength(1);
    expect(info.arenas[0].sizes).toEqual([{ kind: 'fastbin', from: 17, to: 32, total: 32, count: 1 }]);
    expect(info.arenas[0].subheaps).toBeUndefined();
    expect(info.totals.mmap).toEqual({ count: 0, size: 0 });
    expect(Object.keys(info.arenas[0]).sort()).toEqual(
      ['aspaceMprotect', 'aspaceTotal', 'fast', 'nr', 'rest', 'sizes', 'systemCurrent', 'systemMax'].sort(),
    );
  });

  it('accepts single-quoted attributes, spacing inside tags and <x></x> for <x/>', () => {
    const xml = oneHeap(`  <size  from = '17'\tto="32" total="32" count="1" ></size >`);
    expect(parseMallocInfo(xml).arenas[0].sizes[0]).toEqual({ kind: 'fastbin', from: 17, to: 32, total: 32, count: 1 });
  });
});

describe('parseMallocInfo: errors', () => {
  it('throws ERR_MALLOC_INFO for an unclosed tag', () => {
    const xml = fixture('two-heaps.xml');
    expectMallocInfoError(xml.slice(0, xml.indexOf('</heap>')), /<heap> opened at line 2, column 1 is never closed/);
    expectMallocInfoError(xml.replace('</malloc>', ''), /<malloc> opened at line 1, column 1 is never closed/);
    expectMallocInfoError(xml.slice(0, xml.indexOf('count="2"/>')), /unterminated/);
  });

  it('throws ERR_MALLOC_INFO when <malloc> is missing', () => {
    expectMallocInfoError('', /no <malloc> element/);
    expectMallocInfoError('  \n', /no <malloc> element/);
    expectMallocInfoError('<heap nr="0"></heap>', /root element is <heap> .*not <malloc>/);
    expectMallocInfoError('malloc_info failed', /text before the root element/);
  });

  it('throws ERR_MALLOC_INFO for mismatched, stray or duplicated structure', () => {
    const xml = fixture('one-heap.xml');
    expectMallocInfoError(xml.replace('</sizes>', '</heap>'), /<\/heap> does not close <sizes> \(opened at line 3/);
    expectMallocInfoError(`${xml}<malloc version="1"/>`, /a second root element/);
    expectMallocInfoError(`${xml}garbage`, /text after the root element/);
    expectMallocInfoError(`${xml}</malloc>`, /closes nothing/);
    expectMallocInfoError(xml.replace('<sizes>', '<sizes x="1" x="2">'), /duplicate attribute x/);
    expectMallocInfoError(xml.replace('<sizes>', '<sizes x=1>'), /quoted value/);
    expectMallocInfoError(xml.replace('<sizes>', '<sizes x="a<b">'), /"<" in the value/);
    expectMallocInfoError(xml.replace('<sizes>', '<sizes x="&bogus;">'), /unknown entity/);
    expectMallocInfoError(xml.replace('<sizes>', '<!DOCTYPE malloc><sizes>'), /DTD/);
  });

  it('throws ERR_MALLOC_INFO when a field the model needs is missing, repeated or not a number', () => {
    const xml = fixture('two-heaps.xml');
    expectMallocInfoError(xml.replace('<total type="mmap" count="0" size="0"/>', ''), /<malloc> .* has no <total type="mmap">/);
    expectMallocInfoError(xml.replace('<system type="max" size="135168"/>', ''), /<heap nr="0"> .* has no <system type="max">/);
    expectMallocInfoError(xml.replace(/<sizes>[^]*?<\/sizes>/, ''), /<heap nr="0"> .* has no <sizes>/);
    expectMallocInfoError(xml.replace('<heap nr="1">', '<heap>'), /<heap> .* has no nr attribute/);
    expectMallocInfoError(xml.replace('<malloc version="1">', '<malloc>'), /has no version attribute/);
    expectMallocInfoError(xml.replace('<aspace type="subheaps" size="1"/>', '<aspace type="subheaps" size="1"/><aspace type="subheaps" size="2"/>'), /a second <aspace type="subheaps">/);
    expectMallocInfoError(xml.replace('<size from="17"', '<size from="-17"'), /from="-17" is not a non-negative integer/);
    expectMallocInfoError(xml.replace('count="2" size="64"', 'count="2.0" size="64"'), /count="2.0"/);
    expectMallocInfoError(xml.replace('<total type="mmap" count="0"', '<total count="0"'), /<total> without a type attribute/);
    expectMallocInfoError(xml.replace(/count="2"\/>/, 'count="9007199254740993"/>'), /too large for a count/);
  });

  it('rejects what is not a string with ERR_INVALID_ARG_TYPE', () => {
    expect(() => parseMallocInfo(undefined as unknown as string)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }),
    );
  });
});

// ---------------------------------------------------------------------------
// The live allocator of this process.

const sum = (arenas: ArenaInfo[], pick: (arena: ArenaInfo) => number): number =>
  arenas.reduce((total, arena) => total + pick(arena), 0);

describe('mallocInfo (live)', () => {
  it('reports this process: main arena first, totals that add up', () => {
    const info = mallocInfo();
    expect(info.raw.startsWith('<malloc version="1">')).toBe(true);
    expect(info.version).toBe(1);
    expect(info.arenas.length).toBeGreaterThanOrEqual(1);
    expect(info.arenas[0].nr).toBe(0);
    expect(info.arenas.map((arena) => arena.nr)).toEqual(info.arenas.map((_, i) => i));
    expect(info.arenas[0].subheaps).toBeUndefined();
    for (const arena of info.arenas.slice(1)) expect(arena.subheaps).toBeGreaterThanOrEqual(1);
    expect(info.totals.systemCurrent).toBe(sum(info.arenas, (arena) => arena.systemCurrent));
    // No fast totals from 2.43, which has no fastbins.
    if (HERE.fastbins) expect(info.totals.fast!.count).toBe(sum(info.arenas, (arena) => arena.fast!.count));
    else expect([info.totals, ...info.arenas].some((t) => Object.hasOwn(t, 'fast'))).toBe(false);
    expect(info.totals.rest.count).toBe(sum(info.arenas, (arena) => arena.rest.count));
    expect(info.totals.rest.size).toBe(sum(info.arenas, (arena) => arena.rest.size));
    // The main arena's address space is its system memory.
    expect(info.arenas[0].aspaceTotal).toBe(info.arenas[0].systemCurrent);
  });

  it('sees the shapes the fastbin/bin rule relies on', () => {
    for (const arena of mallocInfo().arenas) {
      // Each arena's rest counts the top chunk plus every binned chunk.
      const binned = arena.sizes.filter((entry) => entry.kind === 'bin').reduce((n, entry) => n + entry.count, 0);
      expect(arena.rest.count).toBe(1 + binned + (arena.unsorted?.count ?? 0));
      const fast = arena.sizes.filter((entry) => entry.kind === 'fastbin');
      expect(fast.reduce((n, entry) => n + entry.count, 0)).toBe(arena.fast?.count ?? 0);
      for (const entry of fast) expect(entry.total).toBe(entry.to * entry.count);
      // Free chunks in bins carry PREV_INUSE and nothing else: size | 1.
      for (const entry of [...arena.sizes.filter((e) => e.kind === 'bin'), ...(arena.unsorted ? [arena.unsorted] : [])]) {
        expect(entry.from % 16).toBe(1);
        expect(entry.to % 16).toBe(1);
      }
    }
  });

  it('shows a freed chunk above the tcache range (1032 bytes) in a bin or the unsorted bin', () => {
    // 3000 bytes: a 3008-byte chunk, past the tcache, and smaller than the
    // 8 KiB buffer open_memstream callocs, so taking the report cannot reuse it.
    // In a quiet child: between the two reports, nothing but the free may
    // touch the bins that cover 3008.
    const seen = inQuietChild<{ raw: number; before: number; after: number } | string>(`
      h.mallocInfo(); // leaves the report's own buffers free for the next call
      const kept = [];
      let chunk;
      for (let attempt = 0; attempt < 16 && chunk === undefined; attempt++) {
        // The raw binding hands pointers out as numbers; header words are bigints.
        const [before, p, after] = [binding.malloc(3000), binding.malloc(3000), binding.malloc(3000)].map(BigInt);
        kept.push(before, p, after);
        const size = binding.chunkHeader(p)[1] & ~7n;
        // Freed, p must not merge with a neighbour: both are ours and stay in use.
        if (before + (binding.chunkHeader(before)[1] & ~7n) === p && p + size === after) chunk = p;
      }
      if (chunk === undefined) return 'found no 3000-byte block between two of its own kind';
      const header = binding.chunkHeader(chunk)[1];
      const inMainArena = (header & 4n) === 0n;
      const raw = Number((header & ~7n) | 1n); // how a binned chunk's size reads: size | PREV_INUSE
      const covering = (info) => info.arenas
        .filter((arena) => (arena.nr === 0) === inMainArena)
        .flatMap((arena) => [...arena.sizes.filter((e) => e.kind === 'bin'), ...(arena.unsorted ? [arena.unsorted] : [])])
        .filter((entry) => entry.from <= raw && raw <= entry.to)
        .reduce((n, entry) => n + entry.count, 0);
      const before = covering(h.mallocInfo());
      binding.free(chunk);
      const after = covering(h.mallocInfo());
      for (const p of kept) if (p !== chunk) binding.free(p);
      return { raw, before, after };
    `);
    if (typeof seen === 'string') throw new Error(seen);
    expect(seen.raw).toBe(3009);
    // The unsorted entry spans its smallest to largest chunk: adding ours can
    // bring other chunks into the range too.
    expect(seen.after).toBeGreaterThanOrEqual(seen.before + 1);
  });

  it("sees fastbin chunks in another thread's arena", async ({ skip }) => {
    if (NO_FASTBINS !== undefined) skip(NO_FASTBINS);
    // The caller's own arena never shows fastbin chunks: the addon writes the
    // report to an open_memstream stream, and its calloc(1, BUFSIZ) is a large
    // request, which consolidates that arena's fastbins first. So a worker
    // (with an arena of its own) makes the fastbin chunks: 9 mallocs of 40
    // bytes (48-byte chunks) empty its tcache bin for that size, and of the 9
    // frees the tcache takes 7 (glibc's default tcache_count) and the fastbin
    // the rest. The worker then blocks in Atomics.wait, allocating nothing,
    // while this thread reads the report.
    // In a quiet child: no other thread's arena may gain or lose fastbin
    // chunks of 48 bytes between the two reports.
    const seen = await inQuietChild<{ size: string; before: number[]; after: number[] }>(`
      const { Worker } = require('node:worker_threads');
      const shared = new SharedArrayBuffer(16);
      const state = new Int32Array(shared, 0, 2);
      const header = new BigInt64Array(shared, 8, 1);
      const worker = new Worker(
        \`const { workerData } = require('node:worker_threads');
        const b = require(workerData.addon);
        const state = new Int32Array(workerData.shared, 0, 2);
        const header = new BigInt64Array(workerData.shared, 8, 1);
        const step = (next) => { Atomics.store(state, 0, next); Atomics.notify(state, 0); Atomics.wait(state, 0, next, 30000); };
        // A malloc(40) can be handed a free 64-byte chunk whole, which a free
        // then puts in another tcache bin (CI once saw one fastbin chunk, not
        // two): 16 mallocs of 56 bytes take such chunks first, and are kept.
        for (let i = 0; i < 16; i++) b.malloc(56n);
        const ps = [];
        for (let i = 0; i < 9; i++) ps.push(b.malloc(40n));
        header[0] = b.chunkHeader(ps[0])[1];
        step(1);
        for (const p of ps) b.free(p);
        step(3);\`,
        { eval: true, workerData: { addon: addonPath, shared } },
      );
      // A worker that failed could not say so while this thread waits: a deadline does.
      const reach = (value) => {
        const deadline = Date.now() + 60000;
        while (Atomics.load(state, 0) !== value) {
          if (Date.now() > deadline) throw new Error('the worker did not reach step ' + value + ' within 60 s');
          Atomics.wait(state, 0, Atomics.load(state, 0), 50);
        }
      };
      const go = (value) => { Atomics.store(state, 0, value); Atomics.notify(state, 0); };
      const fast48 = (info) => info.arenas
        .filter((arena) => arena.nr !== 0)
        .flatMap((arena) => arena.sizes)
        .filter((entry) => entry.kind === 'fastbin' && entry.to === 48)
        .reduce((n, entry) => n + entry.count, 0);
      reach(1);
      const before = h.mallocInfo();
      go(2);
      reach(3);
      const after = h.mallocInfo();
      go(4);
      await new Promise((resolve) => worker.once('exit', resolve));
      return {
        size: header[0],
        before: [fast48(before), before.totals.fast.count],
        after: [fast48(after), after.totals.fast.count],
      };
    `);
    const size = BigInt(seen.size);
    expect(size & ~7n).toBe(48n);
    expect(size & 4n).toBe(4n); // NON_MAIN_ARENA: the worker has an arena of its own
    expect(seen.after[0]).toBeGreaterThanOrEqual(seen.before[0] + 2);
    expect(seen.after[1]).toBeGreaterThanOrEqual(seen.before[1] + 2);
  });
});
